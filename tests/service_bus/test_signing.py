"""HMAC-SHA1 signing: the protocol's test vector and constant-time verification rules."""

from mcom.service_bus import signing

VECTOR_BODY = (
    b'{"jsonrpc":"2.0","id":"abc","method":"magento.sales.order_management.updated",'
    b'"params":{"order":{"id":"000000001"}}}'
)


def test_protocol_test_vector() -> None:
    assert signing.sign("mom", VECTOR_BODY) == "sha1=0db3a955dcb117fecc32cebfd52e091e40013b22"


def test_verify_accepts_the_exact_signature_only() -> None:
    good = "sha1=0db3a955dcb117fecc32cebfd52e091e40013b22"
    assert signing.verify("mom", VECTOR_BODY, good)
    assert signing.verify("mom", VECTOR_BODY, good.encode())
    assert not signing.verify("mom", VECTOR_BODY + b" ", good)  # any byte change
    assert not signing.verify("mom", VECTOR_BODY, good.replace("sha1=", "SHA1="))  # prefix is case-sensitive
    assert not signing.verify("mom", VECTOR_BODY, good[5:])  # prefix required
    assert not signing.verify("other", VECTOR_BODY, good)
    assert not signing.verify("mom", VECTOR_BODY, None)
    assert not signing.verify("", VECTOR_BODY, good)
