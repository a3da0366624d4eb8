"""Authentication flows: top-level flows, their executions and sub-flows, and authenticator configs."""

from __future__ import annotations

from urllib.parse import quote

from provisioner.gateway.transport import Transport


def _alias(alias: str) -> str:
    return quote(alias, safe="")


class FlowAdmin(Transport):
    """The Admin API calls on authentication flows (flows are named by alias, executions by id), python-keycloak's
    named calls."""

    def flows(self) -> list[dict]:
        """The realm's top-level flows."""
        return self.call(self.kc.get_authentication_flows) or []

    def create_flow(self, alias: str, description: str) -> str:
        """An empty top-level flow of basic steps; its id."""
        self.call(self.kc.create_authentication_flow, {"alias": alias, "description": description,
                                                       "providerId": "basic-flow", "topLevel": True, "builtIn": False})
        return next(f["id"] for f in self.flows() if f["alias"] == alias)

    def rename_flow(self, flow_id: str, alias: str) -> None:
        flow = self.call(self.kc.get_authentication_flow_for_id, flow_id)
        self.call(self.kc.update_authentication_flow, flow_id, {**flow, "alias": alias})

    def delete_flow(self, flow_id: str) -> None:
        self.call(self.kc.delete_authentication_flow, flow_id)

    def flow_executions(self, alias: str) -> list[dict]:
        """Every step of the flow, sub-flows' steps included, in order (with their level and requirement)."""
        return self.call(self.kc.get_authentication_flow_executions, _alias(alias), none_on_404=True) or []

    def add_flow_execution(self, parent_alias: str, provider: str) -> None:
        """Append an authenticator step to the flow (or sub-flow) ``parent_alias``."""
        self.call(self.kc.create_authentication_flow_execution, {"provider": provider}, _alias(parent_alias))

    def add_subflow(self, parent_alias: str, alias: str) -> None:
        """Append a sub-flow of basic steps named ``alias`` to the flow (or sub-flow) ``parent_alias``."""
        self.call(self.kc.create_authentication_flow_subflow, {"alias": alias, "type": "basic-flow",
                                                               "provider": "registration-page-form", "description": ""},
                  _alias(parent_alias))

    def update_flow_execution(self, alias: str, execution: dict) -> None:
        """Save a step of the flow ``alias`` (its requirement)."""
        self.call(self.kc.update_authentication_flow_executions, execution, _alias(alias))

    def authenticator_config(self, config_id: str) -> dict | None:
        return self.call(self.kc.get_authenticator_config, config_id, none_on_404=True)

    def add_execution_config(self, execution_id: str, alias: str, config: dict) -> None:
        self.call(self.kc.create_execution_config, execution_id, {"alias": alias, "config": config})
