"""ament_python package definition (colcon build) that also installs into a plain venv."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "siftrain_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={PACKAGE: ["samples/*", "weights/*.safetensors", "weights/*.json",
                            "weights/*.md"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/engines", glob("engines/*.md")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="siftrain_ros developers",
    maintainer_email="siftrain@example.org",
    description="Rain-robust SIFT front end: DPRNet/GGIRNet deraining for SIFT, as a ROS 2 node.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "siftrain = siftrain_ros.cli:main",
            "siftrain_node = siftrain_ros.node:main",
            "siftrain_vo = siftrain_ros.vo:main",
        ],
    },
)
