package ma.cimr.keycloak;

import jakarta.persistence.EntityManager;
import jakarta.persistence.TypedQuery;
import jakarta.ws.rs.GET;
import jakarta.ws.rs.NotAuthorizedException;
import jakarta.ws.rs.Path;
import jakarta.ws.rs.Produces;
import jakarta.ws.rs.QueryParam;
import jakarta.ws.rs.core.MediaType;
import org.keycloak.common.Version;
import org.keycloak.connections.jpa.JpaConnectionProvider;
import org.keycloak.models.GroupModel;
import org.keycloak.models.KeycloakSession;
import org.keycloak.models.RealmModel;
import org.keycloak.models.UserModel;
import org.keycloak.models.jpa.entities.GroupEntity;
import org.keycloak.models.jpa.entities.UserAttributeEntity;
import org.keycloak.services.managers.AppAuthManager;
import org.keycloak.services.managers.AuthenticationManager;
import org.keycloak.services.resources.admin.AdminAuth;
import org.keycloak.services.resources.admin.fgap.AdminPermissionEvaluator;
import org.keycloak.services.resources.admin.fgap.AdminPermissions;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Read-only bulk listings for the security audit (provisioner/audit_collect.py), a page at a time:
 *
 * <ul>
 *   <li>{@code GET users?first=&max=}: users with their attributes, the ids of the groups they are a
 *   direct member of, and the types of their credentials ({@code credentialTypes}: password, otp...);</li>
 *   <li>{@code GET groups?first=&max=}: the realm's groups with their parent, attributes and the ids of the
 *   roles mapped to each ({@code roles});</li>
 *   <li>{@code GET last-logins}: each user's last LOGIN event time (needs view-events);</li>
 *   <li>{@code GET admin-events?since=&first=&max=}: admin events since a time, newest first, without the
 *   representation they carry, with the name of the token's realm and user ({@code authRealm},
 *   {@code authUsername}: a master-realm admin is otherwise an opaque id to this realm's callers) (needs
 *   view-events);</li>
 *   <li>{@code GET server}: the running Keycloak's version (needs view-realm). The Admin API tells it in
 *   {@code /admin/serverinfo} to master-realm administrators only; the audit compares it with the advisory register
 *   (realm/advisories.yaml).</li>
 * </ul>
 *
 * The Admin API has no bulk read of group memberships: an audit must otherwise read the members of every
 * group, one request per group (about one per user in this realm's layout). These answer what a caller
 * holding view-users may already read object by object ({@code GET /users/{id}}, {@code /users/{id}/groups},
 * {@code /groups/{id}}), with a few queries per page; the values of a multivalued attribute come in
 * alphabetical order. Nothing here writes.
 */
public class AuditReadResource {

    static final int DEFAULT_PAGE = 1000;
    static final int MAX_PAGE = 5000;

    private final KeycloakSession session;

    public AuditReadResource(KeycloakSession session) {
        this.session = session;
    }

    @GET
    @Path("users")
    @Produces(MediaType.APPLICATION_JSON)
    public List<Map<String, Object>> users(@QueryParam("first") Integer first, @QueryParam("max") Integer max) {
        RealmModel realm = requireViewUsers();
        EntityManager em = entityManager();
        List<Object[]> rows = page(em.createQuery(
                "select u.id, u.username, u.enabled, u.createdTimestamp, u.serviceAccountClientLink "
                        + "from UserEntity u where u.realmId = :realm order by u.username, u.id", Object[].class)
                .setParameter("realm", realm.getId()), first, max);
        Map<String, Map<String, Object>> byId = new LinkedHashMap<>();
        for (Object[] r : rows) {
            Map<String, Object> user = new LinkedHashMap<>();
            user.put("id", r[0]);
            user.put("username", r[1]);
            user.put("enabled", r[2]);
            user.put("createdTimestamp", r[3]);
            user.put("serviceAccountClientLink", r[4]);
            user.put("attributes", new LinkedHashMap<String, List<String>>());
            user.put("groups", new ArrayList<String>());
            user.put("credentialTypes", new ArrayList<String>());
            byId.put((String) r[0], user);
        }
        if (byId.isEmpty()) {
            return List.of();
        }
        List<String> ids = new ArrayList<>(byId.keySet());
        // getValue() of the entity, not the column: long values live in another column.
        em.createQuery("select a.user.id, a from UserAttributeEntity a where a.user.id in :ids order by a.name, a.value",
                        Object[].class)
                .setParameter("ids", ids).getResultList()
                .forEach(r -> addValue(byId.get((String) r[0]), ((UserAttributeEntity) r[1]).getName(),
                        ((UserAttributeEntity) r[1]).getValue()));
        em.createQuery("select m.user.id, m.groupId from UserGroupMembershipEntity m where m.user.id in :ids",
                        Object[].class)
                .setParameter("ids", ids).getResultList()
                .forEach(r -> groupsOf(byId.get((String) r[0])).add((String) r[1]));
        // The types of each user's credentials (password, otp, webauthn...), never their secrets: the audit reports
        // powerful accounts without a second factor (GET /users/{id}/credentials tells a view-users holder as much).
        em.createQuery("select distinct c.user.id, c.type from CredentialEntity c where c.user.id in :ids "
                        + "order by c.type", Object[].class)
                .setParameter("ids", ids).getResultList()
                .forEach(r -> credentialTypesOf(byId.get((String) r[0])).add((String) r[1]));
        return new ArrayList<>(byId.values());
    }

    @GET
    @Path("groups")
    @Produces(MediaType.APPLICATION_JSON)
    public List<Map<String, Object>> groups(@QueryParam("first") Integer first, @QueryParam("max") Integer max) {
        RealmModel realm = requireViewUsers();
        EntityManager em = entityManager();
        List<GroupEntity> rows = page(em.createQuery(
                "select g from GroupEntity g where g.realm = :realm and g.type = :type order by g.id", GroupEntity.class)
                .setParameter("realm", realm.getId())
                .setParameter("type", GroupModel.Type.REALM.intValue()), first, max);
        Map<String, Map<String, Object>> byId = new LinkedHashMap<>();
        for (GroupEntity g : rows) {
            Map<String, Object> group = new LinkedHashMap<>();
            group.put("id", g.getId());
            group.put("name", g.getName());
            group.put("parentId", GroupEntity.TOP_PARENT_ID.equals(g.getParentId()) ? null : g.getParentId());
            group.put("attributes", new LinkedHashMap<String, List<String>>());
            group.put("roles", new ArrayList<String>());
            byId.put(g.getId(), group);
        }
        if (byId.isEmpty()) {
            return List.of();
        }
        List<String> ids = new ArrayList<>(byId.keySet());
        em.createQuery("select a.group.id, a.name, a.value from GroupAttributeEntity a where a.group.id in :ids "
                        + "order by a.name, a.value", Object[].class)
                .setParameter("ids", ids).getResultList()
                .forEach(r -> addValue(byId.get((String) r[0]), (String) r[1], (String) r[2]));
        // The ids of the roles mapped to each group itself (GET /groups/{id}/role-mappings). Keycloak's own
        // GET .../roles/{role}/groups pages an unordered query: on PostgreSQL its pages overlap and skip groups.
        em.createQuery("select m.group.id, m.roleId from GroupRoleMappingEntity m where m.group.id in :ids "
                        + "order by m.roleId", Object[].class)
                .setParameter("ids", ids).getResultList()
                .forEach(r -> rolesOf(byId.get((String) r[0])).add((String) r[1]));
        return new ArrayList<>(byId.values());
    }

    @GET
    @Path("last-logins")
    @Produces(MediaType.APPLICATION_JSON)
    public Map<String, Long> lastLogins() {
        RealmModel realm = requireViewEvents();
        Map<String, Long> out = new LinkedHashMap<>();
        entityManager().createQuery("select e.userId, max(e.time) from EventEntity e where e.realmId = :realm "
                        + "and e.type = 'LOGIN' and e.userId is not null group by e.userId", Object[].class)
                .setParameter("realm", realm.getId()).getResultList()
                .forEach(r -> out.put((String) r[0], (Long) r[1]));
        return out;
    }

    @GET
    @Path("admin-events")
    @Produces(MediaType.APPLICATION_JSON)
    public List<Map<String, Object>> adminEvents(@QueryParam("since") Long since, @QueryParam("first") Integer first,
                                                 @QueryParam("max") Integer max) {
        RealmModel realm = requireViewEvents();
        List<Object[]> rows = page(entityManager().createQuery(
                "select e.time, e.operationType, e.resourceType, e.resourcePath, e.authRealmId, e.authClientId, "
                        + "e.authUserId, e.authIpAddress from AdminEventEntity e where e.realmId = :realm "
                        + "and e.time >= :since order by e.time desc, e.id", Object[].class)
                .setParameter("realm", realm.getId())
                .setParameter("since", since == null ? 0L : since), first, max);
        List<Map<String, Object>> out = new ArrayList<>();
        Map<String, String> names = new HashMap<>();  // per page: the few admins behind many events
        for (Object[] r : rows) {
            Map<String, Object> auth = new LinkedHashMap<>();
            auth.put("realmId", r[4]);
            auth.put("clientId", r[5]);
            auth.put("userId", r[6]);
            auth.put("ipAddress", r[7]);
            Map<String, Object> event = new LinkedHashMap<>();
            event.put("time", r[0]);
            event.put("operationType", r[1]);
            event.put("resourceType", r[2]);
            event.put("resourcePath", r[3]);
            event.put("authDetails", auth);
            event.put("authRealm", names.computeIfAbsent("realm:" + r[4], k -> realmName((String) r[4])));
            event.put("authUsername", names.computeIfAbsent("user:" + r[4] + "/" + r[6],
                    k -> username((String) r[4], (String) r[6])));
            out.add(event);
        }
        return out;
    }

    @GET
    @Path("server")
    @Produces(MediaType.APPLICATION_JSON)
    public Map<String, Object> server() {
        permissions().realm().requireViewRealm();
        return Map.of("version", Version.VERSION);
    }

    /**
     * The name of the realm whose token made an admin event (e.g. {@code master} for a master-realm admin):
     * a caller of this realm cannot read another realm through the Admin API. Null when it no longer exists.
     */
    private String realmName(String realmId) {
        RealmModel realm = realmId == null ? null : session.realms().getRealm(realmId);
        return realm == null ? null : realm.getName();
    }

    /** The username behind an admin event's token, looked up in its own realm; null when gone. */
    private String username(String realmId, String userId) {
        RealmModel realm = realmId == null || userId == null ? null : session.realms().getRealm(realmId);
        UserModel user = realm == null ? null : session.users().getUserById(realm, userId);
        return user == null ? null : user.getUsername();
    }

    /**
     * The realm of the request, once the bearer token (issued by this realm) is checked and its holder may
     * view users, exactly as the Admin API decides it: view-users or manage-users, or a fine-grained
     * permission over all users. Confined delegates get 403.
     */
    private RealmModel requireViewUsers() {
        permissions().users().requireView();
        return session.getContext().getRealm();
    }

    /** As the Admin API's event listings: view-events (or manage-events). */
    private RealmModel requireViewEvents() {
        permissions().realm().requireViewEvents();
        return session.getContext().getRealm();
    }

    private AdminPermissionEvaluator permissions() {
        RealmModel realm = session.getContext().getRealm();
        AuthenticationManager.AuthResult auth = new AppAuthManager.BearerTokenAuthenticator(session).authenticate();
        if (auth == null) {
            throw new NotAuthorizedException("Bearer");
        }
        return AdminPermissions.evaluator(session, realm, new AdminAuth(realm, auth.token(), auth.user(), auth.client()));
    }

    private EntityManager entityManager() {
        return session.getProvider(JpaConnectionProvider.class).getEntityManager();
    }

    private static <T> List<T> page(TypedQuery<T> query, Integer first, Integer max) {
        int from = first == null || first < 0 ? 0 : first;
        int size = max == null || max <= 0 ? DEFAULT_PAGE : Math.min(max, MAX_PAGE);
        return query.setFirstResult(from).setMaxResults(size).getResultList();
    }

    @SuppressWarnings("unchecked")
    private static List<String> rolesOf(Map<String, Object> group) {
        return (List<String>) group.get("roles");
    }

    @SuppressWarnings("unchecked")
    private static void addValue(Map<String, Object> owner, String name, String value) {
        ((Map<String, List<String>>) owner.get("attributes")).computeIfAbsent(name, k -> new ArrayList<>()).add(value);
    }

    @SuppressWarnings("unchecked")
    private static List<String> groupsOf(Map<String, Object> user) {
        return (List<String>) user.get("groups");
    }

    @SuppressWarnings("unchecked")
    private static List<String> credentialTypesOf(Map<String, Object> user) {
        return (List<String>) user.get("credentialTypes");
    }
}
