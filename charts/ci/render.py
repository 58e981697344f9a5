"""Lints and renders the Helm charts with Helm's own library (PyPI helm-python-sdk), for
operator/tests/helm_charts.rs, which decodes what comes out as Kubernetes types.

Usage: python render.py <charts dir> <output dir>

Writes <output dir>/<chart>/<case>.json: {"manifests": {template: yaml}, "lint": report}
for every value case below, and <output dir>/<chart>/rejected.json: the bad values cases
with the error Helm gave (or null when Helm accepted them, which the test refuses).
"""

import json
import os
import sys

import helm_python as helm

# Value cases each chart must lint cleanly and render.
CASES = {
    "rocketmq-operator": {
        "defaults": {},
        "one-namespace": {"watchNamespace": "team-a", "replicaCount": 1},
        "monitoring": {"metrics": {"port": 9090, "serviceMonitor": {"enabled": True}}},
    },
    "rocketmq-cluster": {
        "defaults": {},
        # Also what charts/ci/alerts-test.yaml tests the alerts against (two groups).
        "monitoring": {
            "monitoring": {
                "podMonitor": {"enabled": True},
                "prometheusRule": {"enabled": True},
                "grafanaDashboard": {"enabled": True},
            },
            "spec": {"broker": {"groups": 2}},
        },
        "small": {
            "nameOverride": "dev",
            "spec": {
                "nameServer": {"replicas": 1},
                "controller": {"replicas": 1},
                "broker": {"groups": 2, "replicasPerGroup": 1},
                "proxy": {
                    "replicas": 1,
                    "service": {"type": "LoadBalancer", "annotations": {"example.com/lb": "internal"}},
                },
                "pvcRetentionPolicy": "Delete",
            },
        },
    },
}

# Values each chart's schema must reject.
REJECTED = {
    "rocketmq-operator": {
        "unknown-key": {"replicas": 2},
        "zero-replicas": {"replicaCount": 0},
        "bad-pull-policy": {"image": {"pullPolicy": "Sometimes"}},
        "bad-namespace": {"watchNamespace": "Team_A"},
        "port-as-string": {"metrics": {"port": "8080"}},
    },
    "rocketmq-cluster": {
        "unknown-spec-key": {"spec": {"brokers": 3}},
        "negative-groups": {"spec": {"broker": {"groups": -1}}},
        "bad-retention": {"spec": {"pvcRetentionPolicy": "Sometimes"}},
        "replicas-as-string": {"spec": {"proxy": {"replicas": "two"}}},
        "bad-monitoring": {"monitoring": {"podMonitor": {"enabled": "yes"}}},
        "bad-service-type": {"spec": {"proxy": {"service": {"type": "Ingress"}}}},
    },
}


def main() -> None:
    charts_dir, out_dir = sys.argv[1], sys.argv[2]
    for chart_name, cases in CASES.items():
        path = os.path.join(charts_dir, chart_name)
        chart = helm.Chart.load(path)
        target = os.path.join(out_dir, chart_name)
        os.makedirs(target, exist_ok=True)
        for case, values in cases.items():
            lint = helm.lint(path, values, strict=True, namespace="rocketmq-system", kube_version="v1.30.0")
            manifests = chart.render(values, name="demo", namespace="rocketmq-system", is_install=True)
            with open(os.path.join(target, case + ".json"), "w") as f:
                json.dump({"manifests": manifests, "lint": lint}, f)
        rejected = {}
        for case, values in REJECTED[chart_name].items():
            try:
                chart.validate_schema(chart.merge_values(values))
                rejected[case] = None
            except helm.HelmError as e:
                rejected[case] = str(e)
        with open(os.path.join(target, "rejected.json"), "w") as f:
            json.dump(rejected, f)
        crds = chart.crds
        with open(os.path.join(target, "crds.json"), "w") as f:
            json.dump(crds, f)


if __name__ == "__main__":
    main()
