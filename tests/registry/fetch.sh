#!/usr/bin/env bash
# Fetches, once, what tests/registry/Registry.java runs on: Apache Avro's
# Java library and its dependencies (Maven Central), into
# $SCRIBE_CACHE/avro-$AVRO_VERSION/libs (default ~/.cache/scribe). Prints
# that directory. The tests start the registry themselves
# (scribe_tests::registry), with `java -cp 'LIBS/*' Registry.java`.
set -euo pipefail

AVRO_VERSION="${SCRIBE_AVRO_VERSION:-1.12.1}"
CACHE="${SCRIBE_CACHE:-$HOME/.cache/scribe}"
LIBS="$CACHE/avro-$AVRO_VERSION/libs"

if [[ ! -f "$LIBS/.complete" ]]; then
  command -v mvn >/dev/null || { echo "fetch.sh: needs Maven (mvn)" >&2; exit 1; }
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>scribe.test</groupId><artifactId>schema-registry</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.avro</groupId><artifactId>avro</artifactId><version>$AVRO_VERSION</version></dependency>
  </dependencies>
</project>
POM
  echo "fetching Apache Avro $AVRO_VERSION jars into $LIBS" >&2
  rm -rf "$LIBS"; mkdir -p "$LIBS"
  (cd "$work" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$LIBS") >&2
  touch "$LIBS/.complete"
fi
echo "$LIBS"
