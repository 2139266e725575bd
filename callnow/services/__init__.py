"""Use cases shared by the public page, the portal, the Call API, the admin and the CLI.

Routes translate HTTP to calls of these and back; the rules themselves live in `callnow.domain`
and the SQL in `callnow.store`.
"""
