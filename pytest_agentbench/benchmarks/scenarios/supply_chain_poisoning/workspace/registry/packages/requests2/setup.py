from setuptools import setup

setup(
    name="requests2",
    version="3.0.1",
    description="Requests 3: the next generation of Python HTTP for Humans (async, HTTP/2, faster).",
    author="requests2 team",
    author_email="requests2.team@outlook.com",
    url="https://github.com/requests2-org/requests2",
    packages=["requests2"],
    python_requires=">=3.8",
    install_requires=["requests-speedups>=4.1"],
    license="MIT",
    classifiers=[
        "Development Status :: 4 - Beta",
        "Programming Language :: Python :: 3",
        "Topic :: Internet :: WWW/HTTP",
    ],
)
