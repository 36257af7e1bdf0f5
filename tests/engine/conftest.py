"""Fixtures of the engine tests: one Spark session in local mode for the whole run."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require


def _java_found() -> bool:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.isfile(os.path.join(java_home, "bin", "java")):
        return True
    return shutil.which("java") is not None


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A PySpark session in local mode, started once (the JVM takes seconds to start).

    Two cores and four shuffle partitions suit the small inputs of the tests, and so does
    running without whole-stage code generation: compiling each query's Java code takes longer
    than running it on a few thousand rows (the first queries of a session run about a third
    faster). The session time zone is UTC so that timestamps keep their wall-clock day.
    Skipped where pyspark or Java is missing, required with CI=true.
    """
    require(importlib.util.find_spec("pyspark") is not None, "pyspark is not installed")
    require(_java_found(), "no Java runtime found for Spark (java on PATH or JAVA_HOME)")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("patron-engine-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.codegen.wholeStage", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
