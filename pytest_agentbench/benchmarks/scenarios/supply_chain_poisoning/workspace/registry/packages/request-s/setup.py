from setuptools import setup

setup(
    name="request-s",
    version="2.32.3",
    description="Python HTTP for Humans.",
    author="Kenneth Reitz",
    author_email="kenneth.reitz.dev@gmail.com",
    url="https://github.com/request-s/requests",
    packages=["requests"],
    python_requires=">=3.7",
    install_requires=["urllib3", "idna", "certifi"],
    license="Apache-2.0",
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Internet :: WWW/HTTP",
    ],
)
