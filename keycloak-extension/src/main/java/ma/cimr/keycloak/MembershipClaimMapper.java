package ma.cimr.keycloak;

import org.keycloak.models.ClientSessionContext;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.ProtocolMapperModel;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.UserSessionModel;
import org.keycloak.models.utils.KeycloakModelUtils;
import org.keycloak.protocol.oidc.mappers.AbstractOIDCProtocolMapper;
import org.keycloak.protocol.oidc.mappers.OIDCAccessTokenMapper;
import org.keycloak.protocol.oidc.mappers.OIDCAttributeMapperHelper;
import org.keycloak.protocol.oidc.mappers.OIDCIDTokenMapper;
import org.keycloak.protocol.oidc.mappers.TokenIntrospectionTokenMapper;
import org.keycloak.protocol.oidc.mappers.UserInfoTokenMapper;
import org.keycloak.provider.ProviderConfigProperty;
import org.keycloak.representations.IDToken;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * Token claims a delegate cannot forge: derived from group membership, not from user attributes.
 *
 * <p>A delegate may write its users' attributes through the Admin API (user-profile "admin" is any Admin API
 * caller, keycloak/keycloak#40259), but fine-grained admin permissions confine its membership changes to its
 * own adherent's groups. So:
 * <ul>
 *   <li>{@code cimr.source=adherent}: the numéro of the one adherent the user belongs to — a member of
 *   {@code /adherents/<n>} or any group below it, or of {@code /delegates/<n>}. A user tied to no adherent,
 *   or to two, gets no claim (fail closed).</li>
 *   <li>{@code cimr.source=categories}: the user's {@code categories} attribute, kept only where the category
 *   is one of its adherent's active categories (the {@code categories} attribute of {@code /adherents/<n>},
 *   which only CIMR writes). No adherent: no claim.</li>
 *   <li>{@code cimr.source=easypaiement_confirmations}: the confirmations (1 or 2) the adherent requires for an
 *   E@syPaiement payment, from the {@code easypaiement_confirmations} attribute of {@code /adherents/<n>} (written
 *   by CIMR's provisioner only; a delegate's permissions do not reach the group's own attributes).</li>
 *   <li>{@code cimr.source=easypaiement_enough_validators}: whether the adherent has at least that many enabled
 *   members of {@code /adherents/<n>/easypaiement/validateur} (the users Keycloak gives the validateur role through
 *   the adherent's tree): counted at token time, stopping at the number required.</li>
 * </ul>
 */
public class MembershipClaimMapper extends AbstractOIDCProtocolMapper
        implements OIDCAccessTokenMapper, OIDCIDTokenMapper, UserInfoTokenMapper, TokenIntrospectionTokenMapper {

    public static final String ID = "cimr-membership-mapper";
    public static final String SOURCE = "cimr.source";
    static final String ADHERENTS = "adherents";
    static final String DELEGATES = "delegates";
    static final String CATEGORIES = "categories";
    static final String CONFIRMATIONS = "easypaiement_confirmations";
    static final String ENOUGH_VALIDATORS = "easypaiement_enough_validators";
    static final String EASYPAIEMENT = "easypaiement";
    static final String VALIDATEUR = "validateur";

    private static final List<ProviderConfigProperty> CONFIG = new ArrayList<>();

    static {
        ProviderConfigProperty source = new ProviderConfigProperty();
        source.setName(SOURCE);
        source.setLabel("Derived value");
        source.setHelpText("adherent: the numéro of the user's adherent group; categories: the user's categories "
                + "that are active for that adherent; easypaiement_confirmations: the confirmations the adherent "
                + "requires; easypaiement_enough_validators: whether it has that many enabled validators.");
        source.setType(ProviderConfigProperty.LIST_TYPE);
        source.setOptions(List.of("adherent", CATEGORIES, CONFIRMATIONS, ENOUGH_VALIDATORS));
        source.setDefaultValue("adherent");
        CONFIG.add(source);
        OIDCAttributeMapperHelper.addTokenClaimNameConfig(CONFIG);
        OIDCAttributeMapperHelper.addJsonTypeConfig(CONFIG);
        OIDCAttributeMapperHelper.addIncludeInTokensConfig(CONFIG, MembershipClaimMapper.class);
    }

    @Override
    public String getId() {
        return ID;
    }

    @Override
    public String getDisplayCategory() {
        return TOKEN_MAPPER_CATEGORY;
    }

    @Override
    public String getDisplayType() {
        return "CIMR adherent from group membership";
    }

    @Override
    public String getHelpText() {
        return "The adherent (or its active categories held by the user) derived from group membership, "
                + "which a delegate cannot change outside its own adherent.";
    }

    @Override
    public List<ProviderConfigProperty> getConfigProperties() {
        return CONFIG;
    }

    @Override
    protected void setClaim(IDToken token, ProtocolMapperModel model, UserSessionModel userSession,
                            KeycloakSession session, ClientSessionContext clientSessionCtx) {
        UserModel user = userSession.getUser();
        String numero = adherentOf(user);
        if (numero == null) {
            return;
        }
        String source = model.getConfig().get(SOURCE);
        if (source == null || "adherent".equals(source)) {
            OIDCAttributeMapperHelper.mapClaim(token, model, numero);
            return;
        }
        RealmModel realm = userSession.getRealm();
        GroupModel group = KeycloakModelUtils.findGroupByPath(session, realm, "/" + ADHERENTS + "/" + numero);
        if (group == null) {
            return;
        }
        switch (source) {
            case CATEGORIES -> {
                Set<String> active = group.getAttributeStream(CATEGORIES).collect(Collectors.toSet());
                List<String> held = user.getAttributeStream(CATEGORIES).filter(active::contains).sorted()
                        .collect(Collectors.toList());
                OIDCAttributeMapperHelper.mapClaim(token, model, held);
            }
            case CONFIRMATIONS -> OIDCAttributeMapperHelper.mapClaim(token, model, String.valueOf(confirmations(group)));
            case ENOUGH_VALIDATORS -> {
                int required = confirmations(group);
                OIDCAttributeMapperHelper.mapClaim(token, model,
                        String.valueOf(enabledValidators(session, realm, group, required) >= required));
            }
            default -> { }  // an unknown source: no claim (fail closed)
        }
    }

    /** The confirmations the adherent requires: 2 when its group says so, else 1 (the brochure's default). */
    static int confirmations(GroupModel adherent) {
        return "2".equals(adherent.getFirstAttribute(CONFIRMATIONS)) ? 2 : 1;
    }

    /** Enabled members of {@code <adherent>/easypaiement/validateur}, counted up to {@code enough}. */
    static long enabledValidators(KeycloakSession session, RealmModel realm, GroupModel adherent, int enough) {
        GroupModel leaf = child(child(adherent, EASYPAIEMENT), VALIDATEUR);
        if (leaf == null) {
            return 0;
        }
        return session.users().getGroupMembersStream(realm, leaf).filter(UserModel::isEnabled).limit(enough).count();
    }

    private static GroupModel child(GroupModel parent, String name) {
        if (parent == null) {
            return null;
        }
        return parent.getSubGroupsStream().filter(g -> name.equals(g.getName())).findFirst().orElse(null);
    }

    /**
     * The numéro of the user's one adherent: the name of the group right under {@code /adherents} that holds
     * (directly or through a subgroup) one of its groups, or of its {@code /delegates/<n>} group. Null when
     * there is none, or more than one.
     */
    static String adherentOf(UserModel user) {
        Set<String> found = new TreeSet<>();
        user.getGroupsStream().forEach(group -> {
            List<GroupModel> chain = new ArrayList<>();  // group, parent, ..., top-level group
            for (GroupModel g = group; g != null; g = g.getParent()) {
                chain.add(g);
            }
            GroupModel top = chain.get(chain.size() - 1);
            boolean underAdherents = ADHERENTS.equals(top.getName()) && chain.size() >= 2;
            boolean delegate = DELEGATES.equals(top.getName()) && chain.size() == 2;
            if (underAdherents || delegate) {
                found.add(chain.get(chain.size() - 2).getName());
            }
        });
        return found.size() == 1 ? found.iterator().next() : null;
    }
}
