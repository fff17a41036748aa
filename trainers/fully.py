"""Trains the fully supervised PSP network, selects on validation, tests once, exports.

    python -m trainers.fully                      # synthetic data, a few minutes on 2 CPUs
    python -m trainers.fully --dataset=features --manual_dir=/path/to/AVE   # official recipe
    python -m trainers.fully --seeds=1,2,3        # mean ± std over seeds

Prints one line per epoch (a progress bar on a terminal), then a table such as

      seed selected epoch val acc % test acc %  train s  videos/s
         1             59     ...       ...        ...       ...
    test segment accuracy: xx.xx ± 0.00 % over 1 seed(s); wall time ... s
    exported: saved_models/psp_fully/1

and writes runs/psp_fully/{config.json,results.json,logs/} and saved_models/psp_fully/<v>/.
"""

from absl import app, flags

from trainers import flags as train_flags
from trainers.main_common import run_main


def main(argv):
    run_main("fully", argv)


if __name__ == "__main__":
    train_flags.define_train_flags("fully")
    flags.adopt_module_key_flags(train_flags)  # --help lists the trainer's flags.
    app.run(main, flags_parser=train_flags.parse_flags)
