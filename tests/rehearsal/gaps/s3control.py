"""S3 Control's account-level Block Public Access, which ministack 1.5.33 answers with InvalidURI
and a baseline reads and sets: `GET`, `PUT` and `DELETE /v20180820/configuration/publicAccessBlock`,
the account named in `x-amz-account-id` (a caller may address only its own account). An account with
none set answers 404 `NoSuchPublicAccessBlockConfiguration`; a set one answers 200 with a
`<PublicAccessBlockConfiguration>` of the four booleans; put and delete answer 200 with no body
(Amazon S3 API Reference, S3 Control: GetPublicAccessBlock, PutPublicAccessBlock,
DeletePublicAccessBlock)."""

from xml.etree.ElementTree import Element, SubElement, fromstring, ParseError

from . import require

PATH = "/v20180820/configuration/publicAccessBlock"
SETTINGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def install():
    import ministack.app as served
    from ministack.services import s3

    inner = require(served, "_handle_s3_control_request")
    account_error = require(s3, "s3control_account_error")
    error, respond = require(s3, "s3control_error"), require(s3, "_s3control_response")
    namespace = require(s3, "S3CONTROL_NS")
    blocks: dict[str, dict[str, bool]] = {}

    def handle(method: str, headers: dict, body: bytes):
        account = headers.get("x-amz-account-id", "")
        if denied := account_error(headers):
            return denied
        if method == "GET":
            if account not in blocks:
                return error("NoSuchPublicAccessBlockConfiguration",
                             "The public access block configuration was not found", 404, {"AccountId": account})
            root = Element("PublicAccessBlockConfiguration", xmlns=namespace)
            for name in SETTINGS:
                SubElement(root, name).text = "true" if blocks[account][name] else "false"
            return respond(root)
        if method == "PUT":
            try:
                given = {el.tag.split("}")[-1]: (el.text or "").strip().lower() for el in fromstring(body or b"<x/>")}
            except ParseError as e:
                return error("MalformedXML", f"The XML you provided was not well-formed: {e}", 400)
            blocks[account] = {name: given.get(name) == "true" for name in SETTINGS}
            return 200, {}, b""
        if method == "DELETE":
            blocks.pop(account, None)
            return 200, {}, b""
        return error("MethodNotAllowed", f"{method} is not allowed on {PATH}", 405)

    async def handle_s3_control_request(path, method, body, query_params, request_id, headers=None):
        if path.rstrip("/") != PATH:
            return await inner(path, method, body, query_params, request_id, headers)
        status, answer_headers, answer = handle(method, headers or {}, body)
        return status, {**answer_headers, "x-amzn-requestid": request_id}, answer

    served._handle_s3_control_request = handle_s3_control_request
