"""Training entry points and their shared pieces for PSP on AVE.

Entry points: `python -m trainers.fully`, `trainers.weakly`, `trainers.ablate`,
`trainers.evaluate`. Shared modules, one job each: `config` (TrainConfig and the flags
generated from it), `training` (one job: seeds x fit/select/test, results, export),
`callbacks` (selection, backup, dropout seeds, scalar logs, progress), `distribution`
(strategies, multi-host loop), `reports` (results.json and the printed table), `schedule`
(the official learning-rate decay); batches come from `ave_tf.data`. Only the entry-point
bodies read absl FLAGS, through `trainers.config.config_from_flags`.
"""
