#!/usr/bin/env bash
# Local Spark for CRM_ENGINE=spark: one JVM (local mode) with a Thrift server (HiveServer2
# protocol, what dbt-spark's thrift method talks to) and Spark Connect (what Python code
# opens with SparkSession.builder.remote), on 127.0.0.1 only, sharing one Derby metastore
# and one warehouse folder under the project's data folder. Installs Debian's Java 17
# (and PostgreSQL's JDBC driver) where missing; Spark itself is the venv's pyspark (its
# jars hold both servers).
# Idempotent: a second run finds the server answering and changes nothing. Prints the
# settings that point the project at it on its last line (stdout); the rest goes to stderr.
# Stop it: kill -- -$(cat "$(.venv/bin/python -m crm_warehouse.settings spark_metastore_dir)/thriftserver.pid")
# Server sizing (environment): CRM_SPARK_MASTER (local[2]), CRM_SPARK_DRIVER_MEMORY (2g),
# CRM_SPARK_SHUFFLE_PARTITIONS (4: small data on two cores; a cluster wants hundreds).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
MASTER=${CRM_SPARK_MASTER:-local[2]}
DRIVER_MEMORY=${CRM_SPARK_DRIVER_MEMORY:-2g}
SHUFFLE_PARTITIONS=${CRM_SPARK_SHUFFLE_PARTITIONS:-4}

log() { echo "spark.sh: $*" >&2; }
setting() { "$PYTHON" -m crm_warehouse.settings "$1"; }

# PostgreSQL's JDBC driver (Debian's; Maven Central is not reachable everywhere) lets
# Spark's executors write the published tables to PostgreSQL themselves. It goes on the
# JVM's own class path (local mode: the executors are in the driver's JVM): added with
# --jars it was loaded by a session's class loader, and once that session closed the
# registered driver failed with NoClassDefFoundError: org/postgresql/Driver$1.
POSTGRES_JDBC_JAR=/usr/share/java/postgresql.jar
if ! command -v java >/dev/null || [ ! -f "$POSTGRES_JDBC_JAR" ]; then
    log "installing openjdk-17-jre-headless and libpostgresql-jdbc-java with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless libpostgresql-jdbc-java >&2
fi
# --java-only: make sure Java and the JDBC driver are there (CI does, before the tests
# start their own servers).
if [ "${1:-}" = --java-only ]; then
    java -version 2>&1 | head -n 1 >&2
    exit 0
fi
if [ ! -x "$PYTHON" ]; then
    log "no $PYTHON: run make install first"
    exit 1
fi

HOST=$(setting spark_thrift_host)
PORT=$(setting spark_thrift_port)
CONNECT_URL=$(setting spark_connect_url)
CONNECT_PORT=${CONNECT_URL##*:}
WAREHOUSE_DIR=$(setting spark_warehouse_dir)
METASTORE_DIR=$(setting spark_metastore_dir)
SPARK_HOME=$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
PID_FILE="$METASTORE_DIR/thriftserver.pid"
LOG_FILE="$METASTORE_DIR/thriftserver.log"
CONNECTION="CRM_ENGINE=spark CRM_SPARK_THRIFT_HOST=$HOST CRM_SPARK_THRIFT_PORT=$PORT CRM_SPARK_CONNECT_URL=$CONNECT_URL"

answers() {
    "$PYTHON" - "$HOST" "$PORT" "$CONNECT_PORT" <<'PY' 2>/dev/null
import socket, sys
host, ports = sys.argv[1], sys.argv[2:]
for port in ports:
    socket.create_connection((host, int(port)), timeout=2).close()
PY
}

if answers; then
    log "Spark answers on $HOST:$PORT (Thrift) and $CONNECT_URL (Connect)"
    echo "$CONNECTION"
    exit 0
fi
if [ "$HOST" != 127.0.0.1 ] && [ "$HOST" != localhost ]; then
    log "CRM_SPARK_THRIFT_HOST=$HOST does not answer on port $PORT; this script starts a local server only"
    exit 1
fi
if [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    log "a Spark server (pid $(cat "$PID_FILE")) is starting; waiting for it"
else
    mkdir -p "$WAREHOUSE_DIR" "$METASTORE_DIR"
    log "starting Spark $MASTER on $HOST:$PORT (Thrift) and $CONNECT_URL (Connect); log $LOG_FILE"
    # The metastore (Derby) and its log live in METASTORE_DIR; the tables are Parquet
    # folders under WAREHOUSE_DIR. setsid: the server outlives this script.
    # Partitions are found from the table's folders, listed on the driver, and no
    # table's file list is cached. A day-partitioned table (730 folders on the test
    # company) cost each session's first read (dbt opens a session per node) a listing
    # job of 730 tasks, about 3 s, and a rewrite of its partitions 20 s of Derby
    # updates; an uncached list lets a long-lived session (Spark Connect) see what dbt
    # wrote through Thrift (docs/scale_out.md, "What is measured so far").
    # Each server keeps its operation logs in its own folder: by default every Thrift
    # server of the user shares /tmp/<user>/operation_logs, and one that stops removes
    # the others' logs, failing their sessions ("Session does not exist!").
    # Python code Spark runs on its workers (mapInPandas, UDFs) runs in the project's venv,
    # which has pandas, pyarrow and the project; by default Spark starts the system python3.
    # The venv's own path, not the interpreter it links to: that one has none of them.
    PYSPARK_PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")" SPARK_HOME="$SPARK_HOME" setsid nohup "$SPARK_HOME/bin/spark-submit" \
        --class org.apache.spark.sql.hive.thriftserver.HiveThriftServer2 \
        --name crm-warehouse-spark \
        --master "$MASTER" \
        --driver-memory "$DRIVER_MEMORY" \
        --driver-class-path "$POSTGRES_JDBC_JAR" \
        --conf spark.sql.catalogImplementation=hive \
        --conf "spark.sql.warehouse.dir=$WAREHOUSE_DIR" \
        --conf "spark.hadoop.javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName=$METASTORE_DIR/metastore_db;create=true" \
        --conf "spark.driver.extraJavaOptions=-Dderby.system.home=$METASTORE_DIR -Duser.timezone=UTC" \
        --conf spark.sql.session.timeZone=UTC \
        --conf "spark.sql.shuffle.partitions=$SHUFFLE_PARTITIONS" \
        --conf spark.sql.adaptive.enabled=true \
        --conf spark.sql.hive.manageFilesourcePartitions=false \
        --conf spark.sql.sources.parallelPartitionDiscovery.threshold=100000 \
        --conf spark.sql.filesourceTableRelationCacheSize=0 \
        --conf spark.ui.enabled=false \
        --conf spark.driver.host=127.0.0.1 \
        --conf spark.driver.bindAddress=127.0.0.1 \
        --conf spark.plugins=org.apache.spark.sql.connect.SparkConnectPlugin \
        --conf spark.connect.grpc.binding.address=127.0.0.1 \
        --conf "spark.connect.grpc.binding.port=$CONNECT_PORT" \
        --hiveconf "hive.server2.thrift.bind.host=$HOST" \
        --hiveconf "hive.server2.thrift.port=$PORT" \
        --hiveconf "hive.server2.logging.operation.log.location=$METASTORE_DIR/operation_logs" \
        spark-internal >"$LOG_FILE" 2>&1 < /dev/null &
    echo $! > "$PID_FILE"
fi
for _ in $(seq 1 180); do
    if answers; then
        log "Spark answers on $HOST:$PORT (Thrift) and $CONNECT_URL (Connect)"
        echo "$CONNECTION"
        exit 0
    fi
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
        log "the Spark server stopped while starting; the end of $LOG_FILE:"
        tail -n 30 "$LOG_FILE" >&2
        exit 1
    fi
    sleep 1
done
log "Spark did not answer within 180 s; see $LOG_FILE"
exit 1
