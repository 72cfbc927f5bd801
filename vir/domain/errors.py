"""The one error tree of vir, free of any web framework.

    VirError
    ├── ConfigurationError        the service cannot start as configured (missing key, ...)
    ├── InputError                a request field is invalid; names the field, not the value
    │   └── InvalidElement        not a canonical, non-identity ristretto255 element
    ├── AuthenticationError       who is calling could not be established
    │   ├── NoClientCertificate   no client certificate was presented
    │   ├── CertificateNotValidNow  outside the certificate's validity period
    │   ├── CertificateNotForClientAuth  a CA certificate, or one without EKU clientAuth
    │   ├── ForwardedCertificateNotTrusted  Client-Cert header from a peer not a trusted proxy
    │   └── TokenRefused          a Bearer access token not accepted (the key holder's evaluate)
    ├── AccessDenied              the caller is known but not allowed
    │   ├── UnknownOrganisation   the certificate's OIN is not a registered organisation
    │   ├── UnknownCertificate    the organisation is registered, this certificate is not
    │   ├── CertificateRevoked    the certificate was revoked
    │   ├── NotPermitted          this organisation's category or this certificate's role may not
    │   └── OutsideRegion         a privacy officer named something outside their region
    ├── NotFound                  no such object for this caller (another's objects look absent)
    ├── Conflict                  the request contradicts what is already registered
    ├── RateLimited               too many requests; carries ``retry_after`` seconds
    ├── LogInconsistent           the stored audit log no longer matches what was signed
    ├── WriteNotCommitted         the database did not commit a write; nothing of it was stored
    └── CryptoError               any failure inside a cryptographic operation; deliberately opaque

``api/errors.py`` maps every class to one problem+json answer. Messages are written for the
caller and must never contain a pseudonym, BSN, token, key or the offending input itself.
"""

from __future__ import annotations


class VirError(Exception):
    """Base of every error vir raises on purpose."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ConfigurationError(VirError):
    """The service is configured in a way that is unsafe or incomplete."""


class InputError(VirError):
    """A request field is invalid. ``field`` is a dotted path such as ``blinded_elements[3]``."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field


class InvalidElement(InputError):
    """A group element is not a canonical, non-identity ristretto255 encoding."""

    def __init__(self, field: str) -> None:
        super().__init__(field, "not a canonical, non-identity ristretto255 element")


class AuthenticationError(VirError):
    """The caller could not be identified."""


class NoClientCertificate(AuthenticationError):
    def __init__(self) -> None:
        super().__init__("this endpoint requires a client certificate (mutual TLS)")


class CertificateNotValidNow(AuthenticationError):
    def __init__(self) -> None:
        super().__init__("the client certificate is outside its validity period")


class CertificateNotForClientAuth(AuthenticationError):
    """The certificate chains to the client CA but is not a client certificate: it is a CA
    certificate (BasicConstraints CA:TRUE) or its ExtendedKeyUsage lacks clientAuth."""

    def __init__(self) -> None:
        super().__init__(
            "the certificate is not a TLS client certificate (a CA certificate, or no "
            "extended key usage clientAuth)"
        )


class ForwardedCertificateNotTrusted(AuthenticationError):
    def __init__(self) -> None:
        super().__init__(
            "a Client-Cert header is accepted only from the configured reverse proxies; "
            "connect through the proxy"
        )


class TokenRefused(AuthenticationError):
    """A person's access token is not accepted (vir.keyholder.bearer); ``code`` (fixed,
    safe to audit: ``token_expired``, ``token_audience``, ...) says why. The message
    never echoes the token."""

    def __init__(self, code: str) -> None:
        super().__init__("the access token is not valid")
        self.code = code


class AccessDenied(VirError):
    """The caller is identified but not allowed to do this."""


class UnknownOrganisation(AccessDenied):
    def __init__(self) -> None:
        super().__init__("the certificate does not belong to a registered organisation")


class UnknownCertificate(AccessDenied):
    def __init__(self) -> None:
        super().__init__("this certificate is not registered for the organisation")


class CertificateRevoked(AccessDenied):
    def __init__(self) -> None:
        super().__init__("the client certificate has been revoked")


class NotPermitted(AccessDenied):
    """The caller's category or role does not allow this action (says which, not why not)."""


class OutsideRegion(AccessDenied):
    """A regional privacy officer named something outside their region: another region's
    monitor, or a signal that is not one of their region's signals on the person. The
    message never says whether that thing exists elsewhere."""


class NotFound(VirError):
    """The object does not exist for this caller. Others' objects are reported the same way."""


class Conflict(VirError):
    """The request contradicts an existing registration."""


class SecondSignalOnPerson(Conflict):
    """The organisation already has an active signal on this young person: the one under
    ``local_ref``, its own reference (named so that its back office can find the case
    its two references share)."""

    def __init__(self, local_ref: str) -> None:
        super().__init__(
            "your organisation already has an active signal on this young person, "
            f"under local_ref {local_ref}"
        )
        self.local_ref = local_ref


class RateLimited(VirError):
    """Too many requests: ``retry_after`` seconds to wait; ``detail`` may say more (what
    was limited and from when it may be done again), never an identity."""

    def __init__(self, retry_after: int, detail: str = "rate limit exceeded; retry later") -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class LogInconsistent(VirError):
    """The audit log contradicts an earlier signed checkpoint: it was edited or truncated."""


class WriteNotCommitted(VirError):
    """The transaction a write was part of did not commit: nothing of the request was
    stored, and it may be sent again."""

    def __init__(self) -> None:
        super().__init__("the write was not committed: nothing was stored, try again")


class CryptoError(VirError):
    """A cryptographic operation failed. Which check failed is deliberately not said."""

    def __init__(self) -> None:
        super().__init__("cryptographic operation failed")
