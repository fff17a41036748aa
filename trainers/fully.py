"""Trains the fully supervised PSP network (or, with --model=avel, the AVEL baseline),
selects on validation, tests once, exports.

    python -m trainers.fully                      # synthetic data, a few minutes on 2 CPUs
    python -m trainers.fully --dataset=features --manual_dir=/path/to/AVE   # official recipe
    python -m trainers.fully --seeds=1,2,3        # mean ± std over seeds
    python -m trainers.fully --model=avel         # AVEL: runs/ and saved_models/avel_fully

Prints two lines per epoch (`Epoch e/E` and Keras' summary of it: steps, seconds, losses,
accuracy; a progress bar instead on a terminal), then a table:

    python -m trainers.fully
    #> ...
    #>   seed selected epoch val acc % test acc %  train s  videos/s
    #>      1             59     76.15      66.35    205.4      78.5
    #>   mean                    76.15      66.35
    #> test segment accuracy: 66.35 % (1 seed, no spread); wall time 284.8 s
    #> exported: saved_models/psp_fully/1
    #> results: runs/psp_fully/results.json

and writes runs/psp_fully/{config.json,results.json,logs/} and saved_models/psp_fully/<v>/.
Ctrl-C stops with one line; the same command resumes from the last finished epoch.
"""

from ave_tf import cli  # noqa: I001  (first: quiets TensorFlow before anything imports it)

from absl import flags

from trainers import config, training


def main(argv):
    training.train_from_flags("fully", argv)


if __name__ == "__main__":
    config.define_flags("fully")
    flags.adopt_module_key_flags(config)  # --help lists the trainer's flags.
    cli.run(main, interrupted_message=training.INTERRUPTED)
