"""Blueprints, one per space: public, forgotten password, delegate, CIMR agent, auditor."""
