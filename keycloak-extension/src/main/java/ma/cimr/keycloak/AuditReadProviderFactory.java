package ma.cimr.keycloak;

/** Registers {@link AuditReadResource} at /realms/{realm}/cimr-audit. */
public class AuditReadProviderFactory extends ResourceFactory {

    public static final String ID = "cimr-audit";

    public AuditReadProviderFactory() {
        super(ID, AuditReadResource::new);
    }
}
