from s2d.cli import main

main()
