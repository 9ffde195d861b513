"""The server half of Cognito's SRP-6a (USER_SRP_AUTH), as the AWS SDKs' AuthenticationHelper computes it.

The 3072-bit group of RFC 5054, g = 2, k = H(N | g), SHA-256, and the "Caldera Derived Key" HKDF. Cognito stores a
verifier per user; moto stores the plaintext password, so the verifier is derived per sign-in with a fresh salt,
which a client cannot tell apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

N_HEX = (
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
)
N = int(N_HEX, 16)
G = 2
INFO = b"Caldera Derived Key"


def _hash_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest().zfill(64)


def pad_hex(value: int | str) -> str:
    """Hex with an even number of digits and a leading 00 when the top bit is set (a positive big integer)."""
    text = value if isinstance(value, str) else f"{value:x}"
    if len(text) % 2 == 1:
        return "0" + text
    if text[0] in "89abcdefABCDEF":
        return "00" + text
    return text


def _hex_hash(hex_text: str) -> str:
    return _hash_hex(bytes.fromhex(hex_text))


K = int(_hex_hash("00" + N_HEX + "0" + f"{G:x}"), 16)


def _hkdf(ikm: bytes, salt: bytes) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return hmac.new(prk, INFO + b"\x01", hashlib.sha256).digest()[:16]


def pool_name(pool_id: str) -> str:
    """The part of `me-south-1_AbC123` that goes into the hashes (`AbC123`)."""
    return pool_id.split("_", 1)[1]


@dataclass(frozen=True)
class SrpChallenge:
    """What the server keeps between PASSWORD_VERIFIER's challenge and its answer."""

    a_public: int
    b_private: int = field(repr=False)
    b_public: int
    salt_hex: str
    verifier: int
    secret_block: str = field(repr=False)  # base64, sent to the client and signed back

    def challenge_parameters(self) -> dict[str, str]:
        return {"SALT": self.salt_hex, "SRP_B": f"{self.b_public:x}", "SECRET_BLOCK": self.secret_block}


class SrpError(ValueError):
    """The client's SRP_A is unusable."""


def start(pool_id: str, user_id_for_srp: str, password: str, srp_a_hex: str) -> SrpChallenge:
    """The server's B, salt and secret block for a client's A (derives the verifier from `password`)."""
    try:
        a_public = int(srp_a_hex, 16)
    except ValueError as exc:
        raise SrpError("SRP_A is not a hexadecimal number") from exc
    if a_public % N == 0:
        raise SrpError("SRP_A is zero modulo N")
    salt_hex = pad_hex(secrets.randbits(128) | 1 << 127)
    identity = _hash_hex(f"{pool_name(pool_id)}{user_id_for_srp}:{password}".encode())
    x = int(_hex_hash(pad_hex(salt_hex) + identity), 16)
    verifier = pow(G, x, N)
    while True:
        b_private = secrets.randbits(1024) % N
        b_public = (K * verifier + pow(G, b_private, N)) % N
        if b_public % N != 0:
            break
    secret_block = base64.standard_b64encode(secrets.token_bytes(64)).decode()
    return SrpChallenge(a_public, b_private, b_public, salt_hex, verifier, secret_block)


def expected_signature(challenge: SrpChallenge, pool_id: str, user_id_for_srp: str, timestamp: str) -> str:
    """The PASSWORD_CLAIM_SIGNATURE a client that knows the password sends back (base64)."""
    u = int(_hex_hash(pad_hex(challenge.a_public) + pad_hex(challenge.b_public)), 16)
    if u == 0:
        raise SrpError("u is zero")
    shared = pow(challenge.a_public * pow(challenge.verifier, u, N), challenge.b_private, N)
    key = _hkdf(bytes.fromhex(pad_hex(shared)), bytes.fromhex(pad_hex(u)))
    message = (
        pool_name(pool_id).encode()
        + user_id_for_srp.encode()
        + base64.standard_b64decode(challenge.secret_block)
        + timestamp.encode()
    )
    return base64.standard_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def verify(
    challenge: SrpChallenge, pool_id: str, user_id_for_srp: str, timestamp: str, signature: str
) -> bool:
    """Whether `signature` proves knowledge of the password behind `challenge`."""
    try:
        expected = expected_signature(challenge, pool_id, user_id_for_srp, timestamp)
    except SrpError:
        return False
    return hmac.compare_digest(expected, signature.strip())
