#!/usr/bin/env bash
# Apache Kafka on this machine, without Docker: one broker or a cluster of
# three (KRaft, each broker also a controller) on loopback ports.
#
#   tests/kafka/cluster.sh start [--brokers 1|3] [--dir DIR]
#       fetches the broker jars once (Maven), generates a throwaway CA and
#       certificates, formats storage, starts the brokers, waits until every
#       one answers metadata requests, prints `bootstrap=HOST:PORT,...` and
#       writes DIR/cluster.env (every listener's bootstrap list, the TLS files,
#       the PLAIN test user). Default DIR: $TMPDIR/scribe-kafka.
#   tests/kafka/cluster.sh stop [--dir DIR]          stops what start started
#   tests/kafka/cluster.sh kill N [--dir DIR]        SIGKILLs broker N (1-based)
#   tests/kafka/cluster.sh restart N [--dir DIR]     starts broker N again, waits for it
#   tests/kafka/cluster.sh leader TOPIC PARTITION [--dir DIR]  prints the leader's id
#   tests/kafka/cluster.sh scram-user NAME PASSWORD [--dir DIR]  SCRAM-SHA-256 and -512
#   tests/kafka/cluster.sh acls ARGS... [--dir DIR]  Kafka's own kafka-acls, as a super user
#   tests/kafka/cluster.sh tool CLASS ARGS...        any Kafka tool class (java -cp the jars)
#
# Listeners of each broker (bootstrap lists in cluster.env):
#   PLAINTEXT       no authentication; its principal, ANONYMOUS, is a super user,
#                   so tests and tools there are never refused
#   SASL_SSL        SCRAM-SHA-256/512 and PLAIN over TLS (client certificate optional)
#   SASL_PLAINTEXT  the same mechanisms without TLS
#   SSL             mutual TLS: a client certificate is required; principal = its CN
#   MISNAMED        SASL_SSL with a certificate for another host name (misnamed.invalid)
# Authorization is on (StandardAuthorizer) and denies what no ACL allows.
#
# Environment: SCRIBE_KAFKA_VERSION (default 4.1.1), SCRIBE_CACHE (default
# ~/.cache/scribe) for the jars, SCRIBE_KAFKA_HEAP (default 512m per broker).
set -euo pipefail

KAFKA_VERSION="${SCRIBE_KAFKA_VERSION:-4.1.1}"
LOG4J_VERSION=2.24.3
CACHE="${SCRIBE_CACHE:-$HOME/.cache/scribe}"
LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
HEAP="${SCRIBE_KAFKA_HEAP:-512m}"

die() { echo "cluster.sh: $*" >&2; exit 1; }

fetch_jars() {
  [[ -f "$LIBS/.complete" ]] && return 0
  command -v mvn >/dev/null || die "needs Maven (mvn) to fetch the broker jars"
  local work; work=$(mktemp -d)
  cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>scribe.test</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
EOF
  echo "fetching Apache Kafka $KAFKA_VERSION jars into $LIBS" >&2
  rm -rf "$LIBS"; mkdir -p "$LIBS"
  (cd "$work" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$LIBS") >&2 || die "maven could not fetch the broker jars"
  rm -rf "$work"
  touch "$LIBS/.complete"
}

java_cp() { java -Xmx256m -XX:TieredStopAtLevel=1 -cp "$LIBS/*" \
  -Dlog4j2.configurationFile="$DIR/log4j2-tools.properties" "$@"; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# A CA, a broker certificate for 127.0.0.1/localhost, one for another name,
# a client certificate, and an unrelated CA nobody trusts. Two days valid.
make_tls() {
  local t="$DIR/tls"; mkdir -p "$t"
  command -v openssl >/dev/null || die "needs openssl to generate the test certificates"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$t/ca.key" -out "$t/ca.pem" -days 2 \
    -subj "/CN=scribe test CA" 2>/dev/null
  openssl req -x509 "${ec[@]}" -keyout "$t/other-ca.key" -out "$t/other-ca.pem" -days 2 \
    -subj "/CN=scribe untrusted CA" 2>/dev/null
  leaf() { # name CN SAN
    openssl req "${ec[@]}" -keyout "$t/$1.key" -out "$t/$1.csr" -subj "/CN=$2" 2>/dev/null
    openssl x509 -req -in "$t/$1.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial \
      -out "$t/$1.pem" -days 2 -extfile <(printf 'subjectAltName=%s\n' "$3") 2>/dev/null
    cat "$t/$1.key" "$t/$1.pem" >"$t/$1-keystore.pem"
  }
  leaf broker localhost "IP:127.0.0.1,DNS:localhost"
  leaf misnamed misnamed.invalid "DNS:misnamed.invalid"
  leaf client scribe-client "DNS:scribe-client"
  chmod 600 "$t"/*.key "$t"/*-keystore.pem
}

listener_list() { # protocol-name -> comma-separated host:port of every broker
  local name=$1 out="" i
  for ((i = 1; i <= BROKERS; i++)); do
    out+="${out:+,}127.0.0.1:$(cat "$DIR/broker-$i/port.$name")"
  done
  echo "$out"
}

write_config() { # broker id, voters
  local i=$1 voters=$2
  local b="$DIR/broker-$i" t="$DIR/tls"
  local rf=$((BROKERS < 3 ? BROKERS : 3)) isr=$((BROKERS < 3 ? 1 : 2))
  local scram_jaas='org.apache.kafka.common.security.scram.ScramLoginModule required;'
  local plain_jaas="org.apache.kafka.common.security.plain.PlainLoginModule required user_${PLAIN_USER}=\"${PLAIN_PASSWORD}\";"
  {
    echo "process.roles=broker,controller"
    echo "node.id=$i"
    echo "controller.quorum.voters=$voters"
    echo "controller.listener.names=CONTROLLER"
    echo "inter.broker.listener.name=PLAINTEXT"
    local l="" a="" name
    for name in PLAINTEXT SASL_SSL SASL_PLAINTEXT SSL MISNAMED CONTROLLER; do
      l+="${l:+,}$name://127.0.0.1:$(cat "$b/port.$name")"
      [[ $name != CONTROLLER ]] && a+="${a:+,}$name://127.0.0.1:$(cat "$b/port.$name")"
    done
    echo "listeners=$l"
    echo "advertised.listeners=$a"
    echo "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,MISNAMED:SASL_SSL"
    echo "log.dirs=$b/data"
    echo "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"
    for name in sasl_ssl sasl_plaintext misnamed; do
      echo "listener.name.$name.scram-sha-256.sasl.jaas.config=$scram_jaas"
      echo "listener.name.$name.scram-sha-512.sasl.jaas.config=$scram_jaas"
      echo "listener.name.$name.plain.sasl.jaas.config=$plain_jaas"
    done
    echo "ssl.keystore.type=PEM"
    echo "ssl.keystore.location=$t/broker-keystore.pem"
    echo "ssl.truststore.type=PEM"
    echo "ssl.truststore.location=$t/ca.pem"
    echo "listener.name.sasl_ssl.ssl.client.auth=requested"
    echo "listener.name.ssl.ssl.client.auth=required"
    echo "listener.name.misnamed.ssl.keystore.type=PEM"
    echo "listener.name.misnamed.ssl.keystore.location=$t/misnamed-keystore.pem"
    echo 'ssl.principal.mapping.rules=RULE:^CN=([^,]+).*$/$1/,DEFAULT'
    echo "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    echo "allow.everyone.if.no.acl.found=false"
    echo "super.users=User:ANONYMOUS"
    echo "auto.create.topics.enable=false"
    echo "num.partitions=1"
    echo "default.replication.factor=$rf"
    echo "min.insync.replicas=$isr"
    echo "offsets.topic.replication.factor=$rf"
    echo "offsets.topic.num.partitions=5"
    echo "transaction.state.log.replication.factor=$rf"
    echo "transaction.state.log.min.isr=$isr"
    echo "transaction.state.log.num.partitions=5"
    # A killed broker is noticed (and leaves the ISRs) in seconds, not 9-30 s.
    echo "broker.heartbeat.interval.ms=500"
    echo "broker.session.timeout.ms=3000"
    echo "replica.lag.time.max.ms=10000"
    # Tests use short sessions and must not wait 3 s for every first join.
    echo "group.min.session.timeout.ms=1000"
    echo "group.initial.rebalance.delay.ms=0"
    echo "share.coordinator.state.topic.replication.factor=$rf"
    echo "share.coordinator.state.topic.min.isr=$isr"
  } >"$b/server.properties"
}

write_log4j() {
  cat >"$DIR/log4j2.properties" <<'EOF'
appender.out.type=Console
appender.out.name=out
appender.out.layout.type=PatternLayout
appender.out.layout.pattern=[%d] %p %m (%c)%n
rootLogger.level=INFO
rootLogger.appenderRef.out.ref=out
logger.request.name=kafka.request.logger
logger.request.level=WARN
logger.authorizer.name=kafka.authorizer.logger
logger.authorizer.level=INFO
EOF
  sed 's/^rootLogger.level=INFO/rootLogger.level=WARN/' "$DIR/log4j2.properties" >"$DIR/log4j2-tools.properties"
}

launch() { # broker id
  local i=$1
  local b="$DIR/broker-$i"
  # setsid: a broker outlives the shell that started it and its signals.
  setsid java -Xms"$HEAP" -Xmx"$HEAP" -XX:+UseG1GC -XX:TieredStopAtLevel=1 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$DIR/log4j2.properties" \
    -cp "$LIBS/*" kafka.Kafka "$b/server.properties" >>"$b/server.log" 2>&1 </dev/null &
  echo $! >"$b/pid"
}

# Waits until broker i answers a metadata request on its PLAINTEXT listener.
await_broker() { # broker id, seconds
  local i=$1 limit=$2 start=$SECONDS
  local b="$DIR/broker-$i"
  local port; port=$(cat "$b/port.PLAINTEXT")
  while ((SECONDS - start < limit)); do
    kill -0 "$(cat "$b/pid")" 2>/dev/null || { tail -30 "$b/server.log" >&2; die "broker $i exited"; }
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
      timeout 60 bash -c 'java -Xmx128m -XX:TieredStopAtLevel=1 -cp "$1/*" \
          -Dlog4j2.configurationFile="$2" org.apache.kafka.tools.TopicCommand \
          --bootstrap-server "$3" --list >/dev/null 2>&1' _ "$LIBS" \
          "$DIR/log4j2-tools.properties" "127.0.0.1:$port"; then
      return 0
    fi
    sleep 0.5
  done
  tail -30 "$b/server.log" >&2
  die "broker $i did not answer metadata requests within ${limit}s"
}

await_all_registered() { # every broker in the metadata of broker 1, $1 seconds
  local limit=$1 start=$SECONDS
  while ((SECONDS - start < limit)); do
    local n
    n=$(java_cp org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$(listener_list PLAINTEXT)" \
      2>/dev/null | grep -c "(id: [0-9]* .*isFenced: false" || true)
    ((n >= BROKERS)) && return 0
    sleep 0.5
  done
  die "not every broker registered within ${limit}s"
}

cmd_start() {
  fetch_jars
  command -v java >/dev/null || die "needs Java 17 or later"
  [[ -f "$DIR/cluster.env" ]] && die "$DIR holds a cluster already: stop it first"
  mkdir -p "$DIR"
  BROKERS=${BROKERS:-1}
  PLAIN_USER=plain-user
  PLAIN_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
  make_tls
  write_log4j
  local i name voters=""
  for ((i = 1; i <= BROKERS; i++)); do
    mkdir -p "$DIR/broker-$i"
    for name in PLAINTEXT SASL_SSL SASL_PLAINTEXT SSL MISNAMED CONTROLLER; do
      free_port >"$DIR/broker-$i/port.$name"
    done
    voters+="${voters:+,}$i@127.0.0.1:$(cat "$DIR/broker-$i/port.CONTROLLER")"
  done
  local cluster_id
  cluster_id=$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
  for ((i = 1; i <= BROKERS; i++)); do
    write_config "$i" "$voters"
    # `=`: a random id may start with `-`, which would read as an option.
    java_cp kafka.tools.StorageTool format --cluster-id="$cluster_id" \
      -c "$DIR/broker-$i/server.properties" --ignore-formatted >"$DIR/broker-$i/format.log" 2>&1 ||
      { cat "$DIR/broker-$i/format.log" >&2; die "cannot format broker $i's storage"; }
  done
  for ((i = 1; i <= BROKERS; i++)); do launch "$i"; done
  for ((i = 1; i <= BROKERS; i++)); do await_broker "$i" 180; done
  ((BROKERS > 1)) && await_all_registered 120
  {
    echo "KAFKA_BROKERS=$BROKERS"
    echo "KAFKA_VERSION=$KAFKA_VERSION"
    for name in PLAINTEXT SASL_SSL SASL_PLAINTEXT SSL MISNAMED; do
      echo "KAFKA_${name}_BOOTSTRAP=$(listener_list "$name")"
    done
    echo "KAFKA_TLS_DIR=$DIR/tls"
    echo "KAFKA_PLAIN_USER=$PLAIN_USER"
    echo "KAFKA_PLAIN_PASSWORD=$PLAIN_PASSWORD"
  } >"$DIR/cluster.env"
  echo "bootstrap=$(listener_list PLAINTEXT)"
}

cmd_stop() {
  local b pid
  for b in "$DIR"/broker-*; do
    [[ -f "$b/pid" ]] || continue
    pid=$(cat "$b/pid")
    kill "$pid" 2>/dev/null || true
  done
  for b in "$DIR"/broker-*; do
    [[ -f "$b/pid" ]] || continue
    pid=$(cat "$b/pid")
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$DIR"
}

load_env() {
  [[ -f "$DIR/cluster.env" ]] || die "no cluster in $DIR (start one first)"
  # shellcheck disable=SC1091
  source "$DIR/cluster.env"
  BROKERS=$KAFKA_BROKERS
}

cmd_kill() {
  load_env
  local pid; pid=$(cat "$DIR/broker-$1/pid")
  kill -9 "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

cmd_restart() {
  load_env
  kill -0 "$(cat "$DIR/broker-$1/pid")" 2>/dev/null && die "broker $1 is running"
  local attempt
  # A port of the killed broker can still be held for a moment (TIME_WAIT
  # on a loaded machine): a broker that dies binding it is started again.
  for attempt in 1 2 3 4 5; do
    launch "$1"
    if (await_broker "$1" 180); then return 0; fi
    grep -q "Address already in use" "$DIR/broker-$1/server.log" || die "broker $1 did not come back"
    echo "cluster.sh: broker $1 could not bind its port yet (attempt $attempt); again in 2 s" >&2
    sleep 2
  done
  die "broker $1 could not bind its ports"
}

cmd_leader() { # topic partition
  load_env
  java_cp org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_PLAINTEXT_BOOTSTRAP" \
    --describe --topic "$1" 2>/dev/null |
    awk -v p="$2" '$0 ~ "Partition: "p"\t" || $0 ~ "Partition: "p" " {
      for (i = 1; i <= NF; i++) if ($i == "Leader:") { print $(i + 1); exit } }'
}

cmd_scram_user() { # name password
  load_env
  local mechanism
  # One mechanism a request: KRaft refuses to alter one user twice in one.
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    java_cp kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_PLAINTEXT_BOOTSTRAP" --alter \
      --entity-type users --entity-name "$1" --add-config "$mechanism=[password=$2]" >/dev/null
  done
}

cmd_acls() {
  load_env
  java_cp org.apache.kafka.tools.AclCommand --bootstrap-server "$KAFKA_PLAINTEXT_BOOTSTRAP" "$@"
}

DIR="${TMPDIR:-/tmp}/scribe-kafka"
args=()
while (($#)); do
  case $1 in
    --dir) DIR=$2; shift 2 ;;
    --brokers) BROKERS=$2; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- "${args[@]}"
(($#)) || die "usage: cluster.sh start|stop|kill N|restart N|leader T P|scram-user U P|acls ...|tool CLASS ... [--dir DIR] [--brokers N]"
command=$1; shift
case $command in
  start) cmd_start ;;
  stop) cmd_stop ;;
  kill) cmd_kill "$1" ;;
  restart) cmd_restart "$1" ;;
  leader) cmd_leader "$1" "$2" ;;
  scram-user) cmd_scram_user "$1" "$2" ;;
  acls) cmd_acls "$@" ;;
  tool) fetch_jars; java -cp "$LIBS/*" "$@" ;;
  fetch) fetch_jars ;;
  *) die "unknown command $command" ;;
esac
