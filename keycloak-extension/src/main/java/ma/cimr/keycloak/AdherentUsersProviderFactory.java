package ma.cimr.keycloak;

/** Registers {@link AdherentUsersResource} at /realms/{realm}/cimr-adherent. */
public class AdherentUsersProviderFactory extends ResourceFactory {

    public static final String ID = "cimr-adherent";

    public AdherentUsersProviderFactory() {
        super(ID, AdherentUsersResource::new);
    }
}
