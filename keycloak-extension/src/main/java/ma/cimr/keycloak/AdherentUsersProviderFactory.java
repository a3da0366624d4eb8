package ma.cimr.keycloak;

import org.keycloak.models.KeycloakSessionFactory;
import org.keycloak.models.utils.KeycloakModelUtils;
import org.keycloak.models.utils.PostMigrationEvent;

/**
 * Registers {@link AdherentUsersResource} at /realms/{realm}/cimr-adherent, and warms each node's cache with the
 * {@code /adherents} group once the node has started.
 *
 * <p>Keycloak 26.7 resolves a group path for a caller confined by fine-grained permissions (a delegate) only once
 * the path's top-level group is in the node's cache: cold, {@code POST /users} with the delegate's group paths
 * answers 403 and {@code group-by-path} 404 (docs/security.md, "Cold cache"). Each node of a cluster has its own
 * cache, so each node warms its own when it starts.
 */
public class AdherentUsersProviderFactory extends ResourceFactory {

    public static final String ID = "cimr-adherent";
    static final String ADHERENTS = "/adherents";

    public AdherentUsersProviderFactory() {
        super(ID, AdherentUsersResource::new);
    }

    @Override
    public void postInit(KeycloakSessionFactory factory) {
        factory.register(event -> {
            if (event instanceof PostMigrationEvent) {
                KeycloakModelUtils.runJobInTransaction(factory, session -> session.realms().getRealmsStream()
                        .forEach(realm -> KeycloakModelUtils.findGroupByPath(session, realm, ADHERENTS)));
            }
        });
    }
}
