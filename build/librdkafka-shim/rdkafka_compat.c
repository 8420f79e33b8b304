/*
 * Compatibility shim loaded by Confluent.Kafka as "librdkafka.so".
 *
 * Confluent.Kafka 2.15 calls three leader-epoch functions that Debian's librdkafka 2.0.2 does not export.
 * This library links the system librdkafka.so.1 (so every other symbol resolves there) and defines the three:
 * each forwards to the real implementation when the linked librdkafka has one (a newer system library), and
 * otherwise reports the epoch as unknown (-1), which is what librdkafka itself does when a broker sends none.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>

typedef int32_t (*get_epoch_fn)(const void *);
typedef void (*set_epoch_fn)(void *, int32_t);

int32_t rd_kafka_message_leader_epoch(const void *message) {
    static get_epoch_fn next;
    if (!next) next = (get_epoch_fn)dlsym(RTLD_NEXT, "rd_kafka_message_leader_epoch");
    return next ? next(message) : -1;
}

int32_t rd_kafka_topic_partition_get_leader_epoch(const void *partition) {
    static get_epoch_fn next;
    if (!next) next = (get_epoch_fn)dlsym(RTLD_NEXT, "rd_kafka_topic_partition_get_leader_epoch");
    return next ? next(partition) : -1;
}

void rd_kafka_topic_partition_set_leader_epoch(void *partition, int32_t epoch) {
    static set_epoch_fn next;
    if (!next) next = (set_epoch_fn)dlsym(RTLD_NEXT, "rd_kafka_topic_partition_set_leader_epoch");
    if (next) next(partition, epoch);
}
