"""The job controller: reconciles each job's desired state with the pods and nodes it observes.

``loop`` runs ``step()`` over every job; ``reconciler`` decides one job's step and hands the
writes to the store in one ``commit_step``. This package sits between the entry points (CLI,
operator, testing) and the backends it drives, a layer the import-linter ``layers`` contract
in ``pyproject.toml`` checks. Nothing is imported here so that ``import trainguard.controller``
stays cheap for callers that need one submodule.
"""
