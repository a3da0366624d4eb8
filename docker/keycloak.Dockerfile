# Keycloak built once for production (`kc.sh build`: PostgreSQL, our extension, health, metrics); the
# containers run `start --optimized` (docker-compose.yml: two nodes, one cluster, behind HAProxy).
# Keep the version equal to devstack/keycloak_server.py's KEYCLOAK_VERSION (tests/test_docker_compose.py).
ARG KEYCLOAK_IMAGE=quay.io/keycloak/keycloak:26.7.5
FROM ${KEYCLOAK_IMAGE} AS keycloak

FROM eclipse-temurin:17-jdk AS extension
COPY --from=keycloak /opt/keycloak/lib/lib/main /keycloak-lib
COPY keycloak-extension/src/main /src
COPY docker/forget-node /forget-node
RUN mkdir /classes /cimr \
 && javac --release 17 -nowarn -cp '/keycloak-lib/*' -d /classes $(find /src/java -name '*.java') \
 && cp -r /src/resources/. /classes/ \
 && jar cf /cimr-keycloak-audit.jar -C /classes . \
 && javac --release 17 -d /cimr /forget-node/ForgetNode.java

FROM keycloak AS builder
COPY --from=extension /cimr-keycloak-audit.jar /opt/keycloak/providers/cimr-keycloak-audit.jar
# The same build options as devstack/production.py's BUILD_OPTIONS.
RUN /opt/keycloak/bin/kc.sh build --db=postgres --health-enabled=true --metrics-enabled=true

FROM keycloak
COPY --from=builder /opt/keycloak/ /opt/keycloak/
# A container started again after its node crashed first deletes the discovery row the dead node left (otherwise
# the other node stays not ready up to a minute: docs/operations.md), then runs kc.sh.
COPY --from=extension /cimr/ForgetNode.class /opt/cimr/ForgetNode.class
COPY docker/keycloak-start.sh /opt/cimr/keycloak-start.sh
ENTRYPOINT ["/opt/cimr/keycloak-start.sh"]
CMD ["start", "--optimized"]
