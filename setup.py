"""Package discovery that pyproject.toml cannot express: the repository-root ``envs_data/``
directory is installed as ``toolgym/envs_data`` (package data), next to the code that reads it."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["toolgym", "toolgym.*", "baselines", "baselines.*"])
    + ["toolgym.envs_data"],
    package_dir={"toolgym.envs_data": "envs_data"},
)
