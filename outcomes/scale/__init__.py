"""The load-time tables built on Apache Spark, from the same queries/_build SQL, for data one machine cannot build."""
