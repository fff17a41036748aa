"""Trains the fully supervised PSP network (or, with --model=avel, the AVEL baseline),
selects on validation, tests once, exports.

    python -m trainers.fully                      # synthetic data, a few minutes on 2 CPUs
    python -m trainers.fully --dataset=features --manual_dir=/path/to/AVE   # official recipe
    python -m trainers.fully --seeds=1,2,3        # mean ± std over seeds
    python -m trainers.fully --model=avel         # AVEL: runs/ and saved_models/avel_fully

Prints one line per epoch (a progress bar on a terminal), then a table such as

      seed selected epoch val acc % test acc %  train s  videos/s
         1             59     ...       ...        ...       ...
    test segment accuracy: xx.xx % (1 seed, no spread); wall time ... s
    exported: saved_models/psp_fully/1

and writes runs/psp_fully/{config.json,results.json,logs/} and saved_models/psp_fully/<v>/.
Ctrl-C stops with one line; the same command resumes from the last finished epoch.
"""

from ave_tf import cli  # noqa: I001  (first: quiets TensorFlow before anything imports it)

from absl import flags

from trainers import config


def main(argv):
    run_config = config.config_from_command_line("fully", argv)
    from trainers import training  # (TensorFlow, Keras, TFDS: only once the flags are checked)

    training.train_and_report(run_config)


if __name__ == "__main__":
    config.define_flags("fully")
    flags.adopt_module_key_flags(config)  # --help lists the trainer's flags.
    cli.run(main, interrupted_message=config.INTERRUPTED)
