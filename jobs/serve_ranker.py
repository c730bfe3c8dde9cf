"""The best-of-N ranker as a Ray job (blocks while serving):

    ray job submit --working-dir . -- python jobs/serve_ranker.py --config rlaifv_ray/configs/toy.yaml

Same as `rlaifv-ray serve CONFIG [--policy P] [--reference R] [--port N] [--set ...]`. For a
long-lived service prefer `serve deploy cluster/serve_ranker.yaml` or a KubeRay RayService.
"""

import sys

from rlaifv_ray.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--config"]:
        args = args[1:]
    sys.exit(main(["serve", *args]))
