#!/usr/bin/env bash
# End-to-end on a kind cluster: build and load the image, install the operator with Helm,
# create examples/rocketmq-cluster-dev.yaml (a master and a slave), produce (Indexed Job,
# one acknowledged message per index), delete the master pod, check that the controllers
# elected the slave (the cluster's status names a new master pod and a higher epoch within
# 60 s), that writes resume, and that every acknowledged message is still there (an
# Indexed Job querying each key, and a consumer group reading the whole topic).
#
#   e2e/kind/run.sh            # needs docker, kind, kubectl and helm on PATH
#   KEEP_CLUSTER=1 e2e/kind/run.sh
#
# On failure, logs and object dumps go to e2e/kind/logs/ (or $LOG_DIR).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
here="$root/e2e/kind"
cluster=${KIND_CLUSTER:-rocketmq-e2e}
log_dir=${LOG_DIR:-$here/logs}
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml")
image="rocketmq-rs:$version"

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 1; }
done

collect_logs() {
  mkdir -p "$log_dir"
  echo "collecting logs into $log_dir" >&2
  kubectl get all,rmq,pvc,events -A -o wide >"$log_dir/objects.txt" 2>&1 || true
  kubectl describe pods -A >"$log_dir/pods-described.txt" 2>&1 || true
  kubectl get rmq -A -o yaml >"$log_dir/rocketmqclusters.yaml" 2>&1 || true
  for pod in $(kubectl get pods -A -o jsonpath='{range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}'); do
    ns=${pod%%/*}; name=${pod#*/}
    kubectl logs -n "$ns" "$name" --all-containers --prefix >"$log_dir/$ns.$name.log" 2>&1 || true
    kubectl logs -n "$ns" "$name" --all-containers --previous >"$log_dir/$ns.$name.previous.log" 2>/dev/null || true
  done
}

finish() {
  status=$?
  if [ "$status" -ne 0 ]; then
    collect_logs
  fi
  if [ "${KEEP_CLUSTER:-0}" != 1 ]; then
    kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap finish EXIT

step() { echo "== $*"; }

# Applies a Job manifest for PHASE and waits until it completes.
run_job() {
  local file=$1 phase=$2 timeout=$3 name
  name=$(sed -n 's/^  name: //p' "$here/$file" | head -1 | sed "s/PHASE/$phase/")
  sed "s/PHASE/$phase/g" "$here/$file" | kubectl apply -f -
  kubectl wait --for=condition=complete "job/$name" --timeout="$timeout"
}

step "kind cluster $cluster"
kind get clusters 2>/dev/null | grep -qx "$cluster" || kind create cluster --name "$cluster" --wait 120s

step "image $image"
"$root/images/build.sh" --tag "$image"
kind load docker-image "$image" --name "$cluster"

step "operator (Helm chart)"
helm upgrade --install rocketmq-operator "$root/charts/rocketmq-operator" \
  --namespace rocketmq-system --create-namespace \
  --set image.pullPolicy=Never --set replicaCount=1 --wait --timeout 180s

step "RocketMQCluster dev"
kubectl apply -f "$root/examples/rocketmq-cluster-dev.yaml"
for component in namesrv controller broker proxy; do
  until kubectl get pods -l "app.kubernetes.io/instance=dev,app.kubernetes.io/component=$component" -o name | grep -q .; do
    sleep 2
  done
done
kubectl wait --for=condition=Ready pod -l app.kubernetes.io/instance=dev --timeout=300s

step "topic and first messages"
run_job topic-job.yaml none 180s
run_job produce-job.yaml before 300s

step "delete the master pod: the controllers elect the slave"
# status.brokerGroups[0] is written by the operator's failover watcher from what the
# controllers report: the master's pod and the master epoch.
group_status() { kubectl get rmq dev -o "jsonpath={.status.brokerGroups[0].$1}" 2>/dev/null; }
old_master=$(group_status master)
old_epoch=$(group_status epoch)
if [ -z "$old_master" ] || [ -z "$old_epoch" ]; then
  echo "run.sh: the status names no master (master='$old_master' epoch='$old_epoch')" >&2
  exit 1
fi
kubectl delete pod "$old_master" --wait=false
deleted_at=$SECONDS
until new_master=$(group_status master) && new_epoch=$(group_status epoch) \
    && [ -n "$new_master" ] && [ "$new_master" != "$old_master" ] \
    && [ "${new_epoch:-0}" -gt "$old_epoch" ]; do
  if [ $((SECONDS - deleted_at)) -gt 60 ]; then
    echo "run.sh: no failover within 60 s (master '$new_master', epoch '$new_epoch')" >&2
    exit 1
  fi
  sleep 1
done
echo "master $old_master (epoch $old_epoch) -> $new_master (epoch $new_epoch) in $((SECONDS - deleted_at)) s"

step "writes resume on the new master"
run_job produce-job.yaml after 300s

step "the deleted pod comes back as a slave"
kubectl wait --for=condition=Ready pod -l app.kubernetes.io/instance=dev,app.kubernetes.io/component=broker --timeout=300s
[ "$(group_status master)" = "$new_master" ] || { echo "run.sh: the master moved again" >&2; exit 1; }

step "nothing acknowledged is lost"
run_job verify-job.yaml before 300s
run_job verify-job.yaml after 300s
run_job consume-job.yaml all 300s
consumed=$(kubectl logs job/kind-e2e-consume-all)
missing=0
for phase in before after; do
  for i in $(seq 0 199); do
    grep -q "BODY: body-$phase-$i\$" <<<"$consumed" || { echo "not consumed: body-$phase-$i" >&2; missing=$((missing + 1)); }
  done
done
[ "$missing" -eq 0 ] || { echo "run.sh: $missing acknowledged messages were not consumed" >&2; exit 1; }
echo "kind e2e passed"
