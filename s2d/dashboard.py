"""The W&B workspace of a sweep's group: the views a user of s2d opens, built with W&B's `wandb-workspaces`.

    s2d-report multirun/<time> --wandb online     # saves the workspace of the sweep's group and prints its URL

Built from what s2d's runs log (s2d/tracking.py): per job the summary (results.json flattened), the long-format
`results` table, the `samples` and `broad` tables, each stage's time as it ends; per training the curves of its
`train` run in the same group. Sections, top to bottom:

- **Accuracy vs tokens**: the `results` tables of every job in the group merged into one scatter, tokens per
  input against accuracy, coloured by row (System 1, System 2, distilled, maj@k, ablations), beside one summary
  scatter per row (each point a job).
- **Rows with intervals**: bar charts of each row's accuracy and of distilled - System 1, with their 95% interval
  ends (`ci95_low`, `ci95_high`) beside them; the merged `results` table.
- **Broad benchmarks**: the paired delta per benchmark (distilled - base) and the `broad` table (verdicts).
- **Training**: loss, learning rate, grad norm and tokens/s of every training run in the group, by step.
- **Stages and samples**: each stage's wall time per job; the per-item `samples` table (System 1 / System 2 /
  distilled outputs, answers, correctness and tokens side by side).

`workspace(...)` only builds the specification (offline, tested); `save` needs a logged-in W&B client.
"""
from __future__ import annotations

ROWS = ("system1", "system2", "system1_matched", "distilled")
TRAINING_CURVES = ("train/loss", "train/learning_rate", "train/grad_norm", "train/tokens_per_s")
STAGES = ("generate", "curate", "train", "evaluate", "broad")
SCATTER_PRESET = "wandb/scatter/v0"   # W&B's built-in Vega scatter (fields x, y, color)


def workspace(entity: str | None, project: str, group: str, benchmarks: list[str] = ()):
    """The workspace specification of one group (a sweep): runs filtered to the group."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    sections = [
        ws.Section(name="Accuracy vs tokens", is_open=True, panels=[
            # W&B's scatter preset over the group's `results` tables, merged (one line per row of each job).
            wr.CustomChart(query={"summaryTable": {"tableKey": "results"}}, chart_name=SCATTER_PRESET,
                           chart_fields={"x": "tokens_per_input", "y": "accuracy", "color": "row"},
                           chart_strings={"title": "accuracy vs tokens per input, every row of every job"}),
            *(wr.ScatterPlot(title=f"{row}: accuracy vs tokens per input",
                             x=wr.SummaryMetric(f"{row}/tokens_per_input"), y=wr.SummaryMetric(f"{row}/accuracy"),
                             log_x=True) for row in ROWS)]),
        ws.Section(name="Rows with intervals", is_open=True, panels=[
            wr.BarPlot(title="accuracy per row (95% interval ends beside each)", metrics=[
                wr.SummaryMetric(f"{row}/{k}") for row in ROWS for k in ("accuracy", "ci95_low", "ci95_high")]),
            wr.BarPlot(title="distilled - System 1, paired [95%]", metrics=[
                wr.SummaryMetric(f"comparisons/distilled - system1/{k}") for k in ("delta", "ci95_low", "ci95_high")]),
            wr.WeavePanelSummaryTable(table_name="results")]),
        ws.Section(name="Broad benchmarks", is_open=bool(benchmarks), panels=[
            *([wr.BarPlot(title="distilled - base per benchmark (points of accuracy)",
                          metrics=[wr.SummaryMetric(f"broad/{b}/delta") for b in benchmarks])] if benchmarks else []),
            wr.WeavePanelSummaryTable(table_name="broad")]),
        ws.Section(name="Training", is_open=True, panels=[
            wr.LinePlot(title=curve.split("/", 1)[1].replace("_", " "), x="train/global_step", y=[curve])
            for curve in TRAINING_CURVES]),
        ws.Section(name="Stages and samples", panels=[
            wr.BarPlot(title="wall seconds per stage",
                       metrics=[wr.SummaryMetric(f"stages/{s}/wall_s") for s in STAGES]),
            wr.WeavePanelSummaryTable(table_name="samples")]),
    ]
    return ws.Workspace(entity=entity or "", project=project, name=f"s2d: {group}", sections=sections,
                        runset_settings=ws.RunsetSettings(filters=ws.And(ws.Metric("Group") == group)))


def save(entity: str | None, project: str, group: str, benchmarks: list[str] = ()) -> str:
    """Create the group's workspace in W&B (online); return its URL."""
    import wandb
    entity = entity or wandb.Api().default_entity
    return workspace(entity, project, group, benchmarks).save().url
