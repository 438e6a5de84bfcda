"""Registry look-ups for pinning ``FROM`` images: references, a distribution API client, tag resolution.

The package needs nothing beyond the standard library, so pinning works wherever
dopt is installed; see :mod:`.reference`, :mod:`.client` and :mod:`.resolve`.
"""

from .cache import DiskCache, default_cache_dir
from .client import Manifest, ManifestDescriptor, RegistryClient
from .credentials import Credentials, DockerCredentialStore
from .errors import (
    AccessDeniedError,
    AuthenticationError,
    CredentialsError,
    ManifestNotFoundError,
    NotFoundError,
    NotInCacheError,
    RateLimitError,
    RegistryError,
    RegistryResponseError,
    RegistryUnreachableError,
    RepositoryNotFoundError,
)
from .reference import (
    InvalidReferenceError,
    Reference,
    Specificity,
    TagVersion,
    compare_specificity,
    parse_reference,
    split_tag,
)
from .resolve import PinMode, PinPolicy, Resolution, candidate_tags, choose_tag, resolve, resolve_many

__all__ = [
    "AccessDeniedError",
    "AuthenticationError",
    "Credentials",
    "CredentialsError",
    "DiskCache",
    "DockerCredentialStore",
    "InvalidReferenceError",
    "Manifest",
    "ManifestDescriptor",
    "ManifestNotFoundError",
    "NotFoundError",
    "NotInCacheError",
    "PinMode",
    "PinPolicy",
    "RateLimitError",
    "Reference",
    "RegistryClient",
    "RegistryError",
    "RegistryResponseError",
    "RegistryUnreachableError",
    "RepositoryNotFoundError",
    "Resolution",
    "Specificity",
    "TagVersion",
    "candidate_tags",
    "choose_tag",
    "compare_specificity",
    "default_cache_dir",
    "parse_reference",
    "resolve",
    "resolve_many",
    "split_tag",
]
