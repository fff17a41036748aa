"""Trains the weakly supervised PSP network (or, with --model=avel, the AVEL baseline),
selects on validation, tests once, exports.

    python -m trainers.weakly                      # synthetic data, a few minutes on 2 CPUs
    python -m trainers.weakly --dataset=features --manual_dir=/path/to/AVE   # official recipe
    python -m trainers.weakly --seeds=1,2,3        # mean ± std over seeds
    python -m trainers.weakly --model=avel         # AVEL: runs/ and saved_models/avel_weakly

Prints what `python -m trainers.fully` prints (see its --help: two lines per epoch off a
terminal, then the table, the test accuracy, `exported: saved_models/psp_weakly/1` and where
results.json is), with the weakly supervised losses, and writes
runs/psp_weakly/{config.json,results.json,logs/} and saved_models/psp_weakly/<v>/.
Ctrl-C stops with one line; the same command resumes from the last finished epoch.
"""

from ave_tf import cli  # noqa: I001  (first: quiets TensorFlow before anything imports it)

from absl import flags

from trainers import config, training


def main(argv):
    training.train_from_flags("weakly", argv)


if __name__ == "__main__":
    config.define_flags("weakly")
    flags.adopt_module_key_flags(config)  # --help lists the trainer's flags.
    cli.run(main, interrupted_message=training.INTERRUPTED)
