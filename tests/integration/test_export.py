"""A run's exports load as they are (s2d/export.py): distill_set.jsonl through `datasets` into TRL's SFTTrainer,
unconverted; the export folder's dataset and model cards; the adapter loads with PEFT."""
import json

import pytest

from s2d.export import main as export_main
from s2d.export import read_distill_set

pytestmark = pytest.mark.integration


def test_the_distill_set_loads_with_datasets_and_trains_one_sft_step_unconverted(lora_run, smollm2, tmp_path):
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer
    results, run_dir = lora_run
    export_main([str(run_dir), "--to", str(tmp_path / "export")])
    path = tmp_path / "export" / "dataset" / "distill_set.jsonl"
    assert path.read_bytes() == (run_dir / "distill_set.jsonl").read_bytes()
    data = load_dataset("json", data_files=str(path), split="train")
    assert len(data) == results["curation"]["kept"] > 0
    assert data[0]["prompt"][0]["role"] == "user" and data[0]["completion"][0]["role"] == "assistant"
    assert {"id", "answer", "votes", "target_correct"} <= set(data.column_names)
    trainer = SFTTrainer(model=smollm2, train_dataset=data,
                         args=SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=1, per_device_train_batch_size=2,
                                        report_to="none", use_cpu=True, bf16=False, logging_steps=1,
                                        save_strategy="no"))
    out = trainer.train()
    assert out.global_step == 1 and 0 < out.training_loss < 20
    # TRL put the loss on the completions only: the prompt-completion format was read as such.
    batch = next(iter(trainer.get_train_dataloader()))
    assert "completion_mask" in trainer.train_dataset.column_names or (batch["labels"] == -100).any()

    card = (tmp_path / "export" / "dataset" / "README.md").read_text()
    c = results["curation"]
    assert f"{c['kept']} of {c['inputs']} unlabeled inputs kept" in card and "label-free" in card
    assert f"`{results['run']['technique']}`" in card and "load_dataset('json'" in card


def test_the_adapter_exports_with_a_model_card_and_loads_with_peft(lora_run, tmp_path):
    from peft import PeftConfig
    results, run_dir = lora_run
    export_main([str(run_dir), "--to", str(tmp_path / "export")])
    adapter = tmp_path / "export" / "adapter"
    assert (adapter / "adapter_config.json").exists() and not list(adapter.glob("checkpoint-*"))
    card = (adapter / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: peft") and f"{results['distilled']['accuracy']:.1%}" in card
    config = PeftConfig.from_pretrained(str(adapter))
    assert config.base_model_name_or_path == json.loads((adapter / "adapter_config.json").read_text())[
        "base_model_name_or_path"]
    examples = read_distill_set(run_dir / "distill_set.jsonl")
    assert len(examples) == results["curation"]["kept"]


def test_export_of_a_folder_without_a_run_says_what_run_means(tmp_path):
    with pytest.raises(SystemExit, match="RUN must be a finished run's folder"):
        export_main([str(tmp_path), "--to", str(tmp_path / "out")])
