"""Registry look-ups for pinning ``FROM`` images: references, a distribution API client, tag resolution.

The package needs nothing beyond the standard library, so pinning works wherever
dopt is installed; see :mod:`.reference`, :mod:`.client` and :mod:`.resolve`.
"""

from importlib import import_module

# ``resolve`` is also the name of a submodule, so the function is imported from ``.resolve`` directly.
# Names are imported on first use: rules only need references and resolution results, and
# format-on-save should not pay for the HTTP client, TLS and thread pools it never uses.
_WHERE = {
    "DiskCache": "cache", "default_cache_dir": "cache",
    "Manifest": "client", "ManifestDescriptor": "client", "RegistryClient": "client",
    "Credentials": "credentials", "DockerCredentialStore": "credentials",
    "AccessDeniedError": "errors", "AuthenticationError": "errors", "CredentialsError": "errors",
    "ManifestNotFoundError": "errors", "NotFoundError": "errors", "NotInCacheError": "errors",
    "RateLimitError": "errors", "RegistryError": "errors", "RegistryResponseError": "errors",
    "RegistryUnreachableError": "errors", "RepositoryNotFoundError": "errors",
    "InvalidReferenceError": "reference", "Reference": "reference", "Specificity": "reference",
    "TagVersion": "reference", "compare_specificity": "reference", "parse_reference": "reference",
    "split_tag": "reference",
    "PinMode": "resolve", "PinPolicy": "resolve", "Resolution": "resolve", "candidate_tags": "resolve",
    "choose_tag": "resolve", "resolve_many": "resolve",
}  # fmt: skip


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)


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
    "resolve_many",
    "split_tag",
]
