"""The ground every use case stands on: the service context, principals and their roles, token
management, idempotency keys and the bounded input types of the request models.
"""
