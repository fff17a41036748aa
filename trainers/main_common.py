"""What `trainers.fully` and `trainers.weakly` share: flags -> config -> training -> table."""

import sys

from absl import flags, logging

from trainers import flags as train_flags
from trainers import results, training
from trainers.errors import UsageError


def run_main(setting, argv):
    """Entry point body: exit code 2 and one line on bad input, the results table otherwise."""
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        sys.exit(2)
    logging.set_verbosity(logging.WARNING)  # TFDS's INFO lines drown the per-epoch lines.
    try:
        config = train_flags.train_config_from_flags(setting, flags.FLAGS)
        summary = training.run_training(config)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    print(results.format_table(summary))
    print(f"results: {config.model_dir}/results.json")
