"""People and identity: who belongs to an organisation, in which team, under which manager,
what they agreed to share, and how they arrive (CSV import, invitations, single sign-on, SCIM).

- ``teams``: teams as records chosen from a list, and delegated team admins (who may manage whom);
- ``provisioning``: the member directory (search, filter), deactivation, reporting lines; the
  one place a member is created or changed, for the pages, the API, CSV import and SCIM;
- ``csv_import``: bulk import from CSV with a dry run (members through ``provisioning``,
  invitations through ``invitations``);
- ``consent``: a learner's consent to share individual figures with their manager, logged;
- ``invitations`` and ``mail``: invitations and reminders by e-mail through a durable outbox;
- ``oidc``: OpenID Connect login per organisation; ``scim``: SCIM 2.0 provisioning.

Accounts, logins and sessions themselves stay in :mod:`learnloop.services.auth`.
"""
