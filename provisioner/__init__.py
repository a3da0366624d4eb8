"""CIMR teleservices identity layer: realm as code and every delegate, agent and auditor action."""
