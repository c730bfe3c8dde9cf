"""The RLAIF-V driver as a Ray job:

    ray job submit --working-dir . -- python jobs/iterate.py --config rlaifv_ray/configs/toy.yaml

Inside a job RAY_ADDRESS points at the cluster, so the driver joins it instead of starting Ray.
Same as `rlaifv-ray run CONFIG [--set ...]`; rerunning the same job resumes the run.
"""

import sys

from rlaifv_ray.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--config"]:  # `--config FILE` reads better in a job spec; the CLI takes it positionally
        args = args[1:]
    sys.exit(main(["run", *args]))
