"""Authentication flows: top-level flows, their executions and sub-flows, and authenticator configs."""

from __future__ import annotations

from urllib.parse import quote

from provisioner.gateway.transport import Transport


def _alias(alias: str) -> str:
    return quote(alias, safe="")


class FlowAdmin(Transport):
    """The Admin API calls on authentication flows (flows are named by alias, executions by id)."""

    def flows(self) -> list[dict]:
        """The realm's top-level flows."""
        return self.get("/authentication/flows") or []

    def create_flow(self, alias: str, description: str) -> str:
        """An empty top-level flow of basic steps; its id."""
        return self.post("/authentication/flows", {"alias": alias, "description": description,
                                                   "providerId": "basic-flow", "topLevel": True, "builtIn": False})

    def rename_flow(self, flow_id: str, alias: str) -> None:
        flow = self.get(f"/authentication/flows/{flow_id}")
        self.put(f"/authentication/flows/{flow_id}", {**flow, "alias": alias})

    def delete_flow(self, flow_id: str) -> None:
        self.delete(f"/authentication/flows/{flow_id}")

    def flow_executions(self, alias: str) -> list[dict]:
        """Every step of the flow, sub-flows' steps included, in order (with their level and requirement)."""
        return self.get(f"/authentication/flows/{_alias(alias)}/executions") or []

    def add_flow_execution(self, parent_alias: str, provider: str) -> None:
        """Append an authenticator step to the flow (or sub-flow) ``parent_alias``."""
        self.post(f"/authentication/flows/{_alias(parent_alias)}/executions/execution", {"provider": provider})

    def add_subflow(self, parent_alias: str, alias: str) -> None:
        """Append a sub-flow of basic steps named ``alias`` to the flow (or sub-flow) ``parent_alias``."""
        self.post(f"/authentication/flows/{_alias(parent_alias)}/executions/flow",
                  {"alias": alias, "type": "basic-flow", "provider": "registration-page-form", "description": ""})

    def update_flow_execution(self, alias: str, execution: dict) -> None:
        """Save a step of the flow ``alias`` (its requirement)."""
        self.put(f"/authentication/flows/{_alias(alias)}/executions", execution)

    def authenticator_config(self, config_id: str) -> dict | None:
        return self.get(f"/authentication/config/{config_id}")

    def add_execution_config(self, execution_id: str, alias: str, config: dict) -> None:
        self.post(f"/authentication/executions/{execution_id}/config", {"alias": alias, "config": config})
