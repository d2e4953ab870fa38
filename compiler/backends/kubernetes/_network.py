"""NetworkPolicies of auditc's Job pods: no ingress, and egress only where a stack declares.

- `auditc-jobs-default-deny` selects every Job pod (`auditc.io/job-pod: "true"`): no
  ingress at all (a server in an evaluation pod is probed by the kubelet, which no
  NetworkPolicy blocks, and reached by its client over loopback), and egress only to
  DNS, the store and `network.extra`;
- `auditc-jobs-hub` adds the Hugging Face Hub for pods labelled `auditc.io/egress-hub`
  (model prefetch, Hub datasets, servers that download their own weights);
- `auditc-external-<service>` adds an `external` service's address for the evaluation
  pods that call it (`auditc.io/external: <service>`).

NetworkPolicies are additive, so a pod may reach the union of what its policies allow.
Pure: builds Pulumi argument objects only.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from pulumi_kubernetes.meta import v1 as meta
from pulumi_kubernetes.networking import v1 as networking

from schemas import InferenceService

from ._names import dns_label
from ._stack_config import EgressRule, KubernetesConfig

__all__ = [
    "DEFAULT_DENY_POLICY",
    "EXTERNAL_LABEL",
    "HUB_LABEL",
    "HUB_POLICY",
    "JOB_POD_LABEL",
    "default_port_rule",
    "external_policy",
    "hub_policy",
    "hub_rules",
    "job_policy",
    "store_rules",
]

JOB_POD_LABEL = "auditc.io/job-pod"
HUB_LABEL = "auditc.io/egress-hub"
EXTERNAL_LABEL = "auditc.io/external"
DEFAULT_DENY_POLICY = "auditc-jobs-default-deny"
HUB_POLICY = "auditc-jobs-hub"

Policy = tuple[str, networking.NetworkPolicySpecArgs]


def default_port_rule(url: str) -> EgressRule:
    """Any address on the port of `url` (`https://…` → 443): where a stack names no address."""
    parts = urlsplit(url)
    port = parts.port or (80 if parts.scheme == "http" else 443)
    return EgressRule(ports=[port])


def store_rules(config: KubernetesConfig) -> list[EgressRule]:
    """Where the store is: the stack's `network.store`, else its endpoint's port anywhere."""
    if config.network.store is not None:
        return config.network.store
    store = config.store
    if store.uri is None:
        return []  # a volume: no network
    query = parse_qs(urlsplit(store.uri).query)
    endpoints = query.get("endpoint_override")
    if not endpoints:
        return [EgressRule(ports=[443])]  # the provider's own endpoint, over HTTPS
    scheme = (query.get("scheme") or ["https"])[0]
    return [default_port_rule(f"{scheme}://{endpoints[0]}")]


def _egress(rule: EgressRule) -> networking.NetworkPolicyEgressRuleArgs:
    peers = None
    if rule.cidr is not None:
        peers = [
            networking.NetworkPolicyPeerArgs(
                ip_block=networking.IPBlockArgs(cidr=rule.cidr, except_=rule.except_ or None)
            )
        ]
    elif rule.namespace is not None or rule.pod_labels:
        namespace = (
            meta.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": rule.namespace})
            if rule.namespace is not None
            else None
        )
        pods = meta.LabelSelectorArgs(match_labels=rule.pod_labels) if rule.pod_labels else None
        peers = [networking.NetworkPolicyPeerArgs(namespace_selector=namespace, pod_selector=pods)]
    ports = [
        networking.NetworkPolicyPortArgs(port=port, protocol=protocol)
        for port in rule.ports
        for protocol in rule.protocols
    ]
    return networking.NetworkPolicyEgressRuleArgs(to=peers, ports=ports or None)


def _selector(label: str, value: str) -> meta.LabelSelectorArgs:
    return meta.LabelSelectorArgs(match_labels={label: value})


def job_policy(config: KubernetesConfig) -> Policy:
    """Every Job pod: no ingress; egress to DNS, the store and `network.extra` only."""
    network = config.network
    rules = [*network.dns, *store_rules(config), *network.extra]
    return DEFAULT_DENY_POLICY, networking.NetworkPolicySpecArgs(
        pod_selector=_selector(JOB_POD_LABEL, "true"),
        policy_types=["Ingress", "Egress"],
        egress=[_egress(rule) for rule in rules],
    )


def hub_rules(config: KubernetesConfig) -> list[EgressRule]:
    """Where the Hub is: the stack's `network.hub`, else its `hubEndpoint`'s port anywhere,
    else the public Hub's default (public addresses on 443)."""
    if config.hub_endpoint is not None and "hub" not in config.network.model_fields_set:
        return [default_port_rule(config.hub_endpoint)]
    return config.network.hub


def hub_policy(config: KubernetesConfig) -> Policy:
    """Pods that download from the Hugging Face Hub may reach it too."""
    return HUB_POLICY, networking.NetworkPolicySpecArgs(
        pod_selector=_selector(HUB_LABEL, "true"),
        policy_types=["Egress"],
        egress=[_egress(rule) for rule in hub_rules(config)],
    )


def external_policy(config: KubernetesConfig, service: InferenceService) -> Policy:
    """Evaluation pods of an `external` service may reach its URL."""
    runner = service.spec.runner
    assert runner.kind == "external"
    rules = config.network.external.get(service.name) or [default_port_rule(runner.url)]
    name = dns_label("auditc-external", service.name)
    return name, networking.NetworkPolicySpecArgs(
        pod_selector=_selector(EXTERNAL_LABEL, service.name),
        policy_types=["Egress"],
        egress=[_egress(rule) for rule in rules],
    )
