#!/usr/bin/env bash
# Apache Kafka for usagebill's tests and tour, assembled from Maven Central (no tarball, no Docker).
#
#   scripts/kafka.sh fetch                      fetch the pinned broker (once), print its lib dir
#   scripts/kafka.sh init DIR [--nodes 1|3] [--port BASE] [--host IP] [--advertise-port PORT]
#                                               write configs, a test CA and SCRAM users, format storage
#   scripts/kafka.sh run DIR N                  run node N in the foreground (exec java)
#   scripts/kafka.sh start DIR [N]              start node N (default: all) in the background, wait ready
#   scripts/kafka.sh stop DIR [N] | kill DIR N  SIGTERM (and wait) or SIGKILL a node (default: all)
#   scripts/kafka.sh restart DIR N              stop node N, start it again
#   scripts/kafka.sh pid DIR N                  the node's process id
#   scripts/kafka.sh up [DIR] [--nodes 3]       init (first time) and start: the README tour's one command
#   scripts/kafka.sh acl DIR ARGS...            Kafka's AclCommand as the admin (e.g. --add --allow-principal ...)
#   scripts/kafka.sh tool CLASS ARGS...         any Kafka tool class (e.g. org.apache.kafka.tools.consumer.ConsoleConsumer)
#
# Ports of node N (1-based) from BASE (default 9092): PLAINTEXT BASE+10(N-1), CONTROLLER +1,
# SASL_PLAINTEXT +2, SASL_SSL +3. SCRAM-SHA-512 users, made at format time, each with password
# NAME-secret: admin (super user), agent, worker, reader, nobody. PLAINTEXT clients are User:ANONYMOUS,
# a super user too, so ACLs only bind the SASL listeners. The TLS listener's CA is DIR/tls/ca.pem.
set -euo pipefail

KAFKA_VERSION=4.1.1
LOG4J_VERSION=2.24.3
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
CACHE="${USAGEBILL_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/usagebill}/kafka-$KAFKA_VERSION"
SCRAM_USERS=(admin agent worker reader nobody)

die() { echo "kafka.sh: $*" >&2; exit 2; }

need_java() {
    command -v java >/dev/null || die "java not found: install Java 17 (Debian: apt-get install openjdk-17-jre-headless)"
    command -v mvn >/dev/null || die "mvn not found: install Maven (Debian: apt-get install maven)"
}

# The broker's jars with their runtime dependencies, plus log4j2 (the official tarball adds it; the
# jar's own dependencies do not). A manifest of sha256 sums, written after Maven checked each jar
# against the repository's checksums, is verified before every use.
fetch() {
    need_java
    local libs="$CACHE/libs"
    if [ -f "$CACHE/libs.sha256" ] && (cd "$libs" && sha256sum --quiet --check ../libs.sha256) >/dev/null 2>&1; then
        echo "$libs"
        return
    fi
    echo "kafka.sh: fetching Apache Kafka $KAFKA_VERSION from Maven Central into $CACHE" >&2
    rm -rf "$CACHE"
    mkdir -p "$CACHE"
    local log4j=""
    for artifact in log4j-api log4j-core log4j-slf4j-impl log4j-1.2-api; do
        log4j+="<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>$artifact</artifactId><version>$LOG4J_VERSION</version></dependency>"
    done
    cat >"$CACHE/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>usagebill.test</groupId><artifactId>kafka-broker</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version>
      <exclusions><exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion></exclusions></dependency>
    $log4j
  </dependencies>
</project>
EOF
    # --strict-checksums: a jar whose checksum does not match the repository's fails the fetch.
    if ! mvn --batch-mode --quiet --strict-checksums -Dstyle.color=never -f "$CACHE/pom.xml" "$DEPENDENCY_PLUGIN:copy-dependencies" \
        -DincludeScope=runtime -DoutputDirectory="$libs" >&2; then
        rm -rf "$CACHE"
        die "fetching Kafka $KAFKA_VERSION with Maven failed (see above); Maven Central must be reachable"
    fi
    [ -f "$libs/kafka_2.13-$KAFKA_VERSION.jar" ] || die "Maven finished but $libs has no kafka_2.13-$KAFKA_VERSION.jar"
    (cd "$libs" && sha256sum ./*.jar >../libs.sha256)
    echo "$libs"
}

java_classpath() { echo "$(fetch)/*"; }

# Kafka's command-line tools, logging warnings to stderr.
run_tool() { # class, args...
    local classpath
    classpath=$(java_classpath)
    local log4j="$CACHE/tools-log4j2.properties"
    [ -f "$log4j" ] || printf '%s\n' 'status = warn' 'appender.err.type = Console' 'appender.err.name = ERR' \
        'appender.err.target = SYSTEM_ERR' 'appender.err.layout.type = PatternLayout' 'appender.err.layout.pattern = %p %m%n' \
        'rootLogger.level = WARN' 'rootLogger.appenderRef.err.ref = ERR' >"$log4j"
    java -Xmx256m -XX:TieredStopAtLevel=1 -cp "$classpath" -Dlog4j2.configurationFile="$log4j" "$@"
}

port_of() { # node, offset
    local base
    base=$(cat "$DIR/base-port")
    echo $((base + 10 * ($1 - 1) + $2))
}

make_tls() {
    local tls="$DIR/tls"
    mkdir -p "$tls"
    command -v openssl >/dev/null || die "openssl not found (Debian: apt-get install openssl)"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=usagebill test CA" \
        -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tls/broker.key" -out "$tls/broker.csr" 2>/dev/null
    # librdkafka verifies the host name: the address clients dial must be in the SAN.
    printf 'subjectAltName=IP:%s,IP:127.0.0.1,DNS:localhost\n' "$HOST" >"$tls/san.ext"
    openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial -days 3650 \
        -extfile "$tls/san.ext" -out "$tls/broker.crt" 2>/dev/null
    # The broker's PEM keystore: an unencrypted PKCS#8 key followed by the certificate chain.
    openssl pkcs8 -topk8 -nocrypt -in "$tls/broker.key" -out "$tls/broker.pk8"
    cat "$tls/broker.pk8" "$tls/broker.crt" "$tls/ca.pem" >"$tls/broker.pem"
}

write_node_config() { # node
    local node=$1 dir="$DIR/node-$1" voters="" plain controller sasl ssl advertised_plain
    mkdir -p "$dir/data"
    plain=$(port_of "$node" 0)
    controller=$(port_of "$node" 1)
    sasl=$(port_of "$node" 2)
    ssl=$(port_of "$node" 3)
    advertised_plain=$plain
    [ "$NODES" = 1 ] && [ -n "$ADVERTISE_PORT" ] && advertised_plain=$ADVERTISE_PORT
    for other in $(seq 1 "$NODES"); do
        voters+="${voters:+,}$other@$HOST:$(port_of "$other" 1)"
    done
    local replication=1 min_isr=1
    if [ "$NODES" = 3 ]; then replication=3; min_isr=2; fi
    local jaas="org.apache.kafka.common.security.scram.ScramLoginModule required;"
    cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$node
log.dirs=$dir/data
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listeners=PLAINTEXT://$HOST:$plain,CONTROLLER://$HOST:$controller,SASL_PLAINTEXT://$HOST:$sasl,SASL_SSL://$HOST:$ssl
advertised.listeners=PLAINTEXT://$HOST:$advertised_plain,SASL_PLAINTEXT://$HOST:$sasl,SASL_SSL://$HOST:$ssl
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL
$(if [ "$NODES" = 1 ]; then echo "controller.quorum.bootstrap.servers=$HOST:$controller"; else echo "controller.quorum.voters=$voters"; fi)
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$jaas
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$jaas
ssl.keystore.type=PEM
ssl.keystore.location=$DIR/tls/broker.pem
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:ANONYMOUS
num.partitions=1
default.replication.factor=$replication
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$replication
transaction.state.log.replication.factor=$replication
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$replication
share.coordinator.state.topic.min.isr=$min_isr
group.initial.rebalance.delay.ms=0
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=500
num.network.threads=2
num.io.threads=2
log.cleaner.dedupe.buffer.size=8388608
log.cleaner.threads=1
EOF
    cat >"$dir/log4j2.properties" <<EOF
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $dir/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = org.apache.kafka
logger.kafka.level = WARN
logger.core.name = kafka
logger.core.level = INFO
EOF
}

init() {
    NODES=1 PORT=9092 HOST=127.0.0.1 ADVERTISE_PORT=""
    while [ $# -gt 0 ]; do
        case "$1" in
            --nodes) NODES=$2; shift 2 ;;
            --port) PORT=$2; shift 2 ;;
            --host) HOST=$2; shift 2 ;;
            --advertise-port) ADVERTISE_PORT=$2; shift 2 ;;
            *) die "init: unknown option '$1' (want --nodes, --port, --host or --advertise-port)" ;;
        esac
    done
    case "$NODES" in 1 | 3) ;; *) die "init: --nodes '$NODES' must be 1 or 3" ;; esac
    [[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1024 ] && [ "$PORT" -le 65000 ] || die "init: --port '$PORT' must be 1024..65000"
    local classpath
    classpath=$(java_classpath)
    rm -rf "$DIR"
    mkdir -p "$DIR"
    echo "$PORT" >"$DIR/base-port"
    echo "$NODES" >"$DIR/nodes"
    echo "$HOST" >"$DIR/host"
    make_tls
    local scram=() cluster_id node
    for user in "${SCRAM_USERS[@]}"; do
        scram+=(--add-scram "SCRAM-SHA-512=[name=$user,password=$user-secret]")
    done
    cluster_id=$(java -cp "$classpath" kafka.tools.StorageTool random-uuid 2>/dev/null)
    local pids=()
    for node in $(seq 1 "$NODES"); do
        write_node_config "$node"
        local standalone=()
        [ "$NODES" = 1 ] && standalone=(--standalone)
        java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -cp "$classpath" \
            -Dlog4j2.configurationFile="$DIR/node-$node/log4j2.properties" \
            kafka.tools.StorageTool format -t "$cluster_id" -c "$DIR/node-$node/server.properties" \
            "${standalone[@]}" "${scram[@]}" >"$DIR/node-$node/format.log" 2>&1 &
        pids+=($!)
    done
    for node in $(seq 1 "$NODES"); do
        wait "${pids[$((node - 1))]}" || die "formatting node $node failed: $(cat "$DIR/node-$node/format.log")"
    done
    bootstrap
}

bootstrap() {
    local list="" node
    for node in $(seq 1 "$(cat "$DIR/nodes")"); do
        list+="${list:+,}$(cat "$DIR/host"):$(port_of "$node" 0)"
    done
    echo "$list"
}

run() { # node
    local node=$1 dir="$DIR/node-$1"
    [ -f "$dir/server.properties" ] || die "no node $node in $DIR: run '$0 init $DIR' first"
    # The pid first: `start` checks it is alive while the jars' checksums are still being verified,
    # which takes longer than its 0.3 s pause on a loaded machine. exec keeps this pid for java.
    echo $$ >"$dir/pid"
    local classpath
    classpath=$(java_classpath)
    # Small heap, one GC thread, quick JIT: a test machine has 2 cores and runs several brokers.
    exec java -Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$dir/log4j2.properties" -cp "$classpath" kafka.Kafka "$dir/server.properties" \
        >>"$dir/stdout.log" 2>&1
}

alive() { [ -f "$DIR/node-$1/pid" ] && kill -0 "$(cat "$DIR/node-$1/pid")" 2>/dev/null; }

wait_port() { # node, seconds
    local port deadline=$((SECONDS + $2))
    port=$(port_of "$1" 0)
    until (exec 3<>"/dev/tcp/$(cat "$DIR/host")/$port") 2>/dev/null; do
        alive "$1" || die "node $1 exited while starting; see $DIR/node-$1/server.log and stdout.log"
        [ $SECONDS -lt "$deadline" ] || die "node $1 did not open port $port within $2 s; see $DIR/node-$1/server.log"
        sleep 0.2
    done
}

nodes_or() { if [ -n "${1:-}" ]; then echo "$1"; else seq 1 "$(cat "$DIR/nodes")"; fi; }

start() {
    local node
    for node in $(nodes_or "${1:-}"); do
        alive "$node" && continue
        setsid "$0" run "$DIR" "$node" </dev/null >/dev/null 2>&1 &
        sleep 0.3
    done
    for node in $(nodes_or "${1:-}"); do wait_port "$node" 60; done
    bootstrap
}

stop() {
    local node
    for node in $(nodes_or "${1:-}"); do
        alive "$node" || continue
        local pid
        pid=$(cat "$DIR/node-$node/pid")
        kill -CONT "$pid" 2>/dev/null || true
        kill -TERM "$pid"
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    done
    return 0
}

command=${1:-}
[ -n "$command" ] || die "usage: $0 fetch|init|run|start|stop|kill|restart|pid|up|acl|tool ... (see the top of this file)"
shift
if [ "$command" = fetch ]; then
    fetch
    exit 0
fi
if [ "$command" = tool ]; then
    run_tool "$@"
    exit 0
fi
if [ "$command" = up ]; then
    DIR=${1:-${XDG_RUNTIME_DIR:-/tmp}/usagebill-kafka}
    [ $# -gt 0 ] && shift
    [ -f "$DIR/nodes" ] || init "$@" >/dev/null
    start
    exit 0
fi
DIR=${1:?"$command needs a DIR"}
shift
case "$command" in
    init) init "$@" ;;
    run) run "${1:?run DIR N}" ;;
    start) start "${1:-}" ;;
    stop) stop "${1:-}" ;;
    kill) alive "${1:?kill DIR N}" && kill -KILL "$(cat "$DIR/node-$1/pid")" ;;
    restart) stop "${1:?restart DIR N}" && start "$1" ;;
    pid) cat "$DIR/node-${1:?pid DIR N}/pid" ;;
    acl) run_tool org.apache.kafka.tools.AclCommand --bootstrap-server "$(cat "$DIR/host"):$(port_of 1 0)" "$@" ;;
    *) die "unknown command '$command' (see the top of $0)" ;;
esac
