"""Training entry points and their shared pieces for PSP on AVE.

`python -m trainers.fully`, `python -m trainers.weakly`, `python -m trainers.evaluate`,
`python -m trainers.ablate`. Library code here never reads absl FLAGS except in
`trainers.flags.train_config_from_flags`.
"""
