"""Lambda's GetAccountSettings, which moto 5.2.5 does not answer, added to its Lambda responses as
AWS documents it (Lambda API Reference, GetAccountSettings; Lambda Developer Guide, "Lambda
quotas"): `AccountLimit` with the account's concurrency quota (1,000 by default; moto's own
MOTO_LAMBDA_CONCURRENCY_QUOTA, which its PutFunctionConcurrency enforces, when set) and the part
of it no function reserves, and `AccountUsage` with the functions and their code size.
"""

import json
import os

from moto.awslambda import urls
from moto.awslambda.responses import LambdaResponse

PATH = r"{0}/(?P<api_version>[^/]+)/account-settings/?$"
DEFAULT_CONCURRENCY = 1000


def get_account_settings(self):
    quota = int(os.environ.get("MOTO_LAMBDA_CONCURRENCY_QUOTA", DEFAULT_CONCURRENCY))
    functions = self.backend.list_functions()
    reserved = sum(int(f.reserved_concurrency or 0) for f in functions)
    return 200, {}, json.dumps({
        "AccountLimit": {
            "TotalCodeSize": 80530636800,
            "CodeSizeUnzipped": 262144000,
            "CodeSizeZipped": 52428800,
            "ConcurrentExecutions": quota,
            "UnreservedConcurrentExecutions": quota - reserved,
        },
        "AccountUsage": {
            "TotalCodeSize": sum(int(getattr(f, "code_size", 0) or 0) for f in functions),
            "FunctionCount": len(functions),
        },
    })


def install():
    if hasattr(LambdaResponse, "get_account_settings"):
        raise SystemExit("lambda_account_settings: moto answers GetAccountSettings itself; this moto is not the pinned one")
    if not callable(getattr(LambdaResponse, "dispatch", None)):
        raise SystemExit("lambda_account_settings: moto's LambdaResponse has no dispatch; this moto is not the pinned one")
    LambdaResponse.get_account_settings = get_account_settings
    urls.url_paths[PATH] = LambdaResponse.dispatch
