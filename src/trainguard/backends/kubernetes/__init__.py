"""The Kubernetes backend and store: trainguard's state and pods as Kubernetes API objects.

The only package (with `trainguard.operator`) that imports lightkube. `client` wraps the API
(retries, error mapping), `cache` keeps list+watch caches, `store` implements the `Store`
protocol over them, and the backend creates Pods, Secrets and Services.
"""
