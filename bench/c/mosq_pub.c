/* The ceiling for draining a backlog: a minimal libmosquitto QoS 1 publisher.
 * Publishes COUNT copies of one payload (read from a file, e.g. a telemetry message Pantau sent) with at most
 * WINDOW messages in flight, and waits for every PUBACK. Prints one JSON line with the timing.
 * Build: cc -O2 -o mosq_pub mosq_pub.c -lmosquitto
 * Usage: mosq_pub -p PORT -n COUNT -f PAYLOAD_FILE [-h HOST] [-t TOPIC] [-w WINDOW] [-3]
 * Every loop is bounded: the run gives up after 600 s. */
#include <errno.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long acked = 0;
static long failed = 0;
static int connected = 0;
static int connect_rc = -1;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_connect(struct mosquitto *m, void *ud, int rc, int flags, const mosquitto_property *props) {
    (void)m; (void)ud; (void)flags; (void)props;
    connect_rc = rc;
    connected = (rc == 0);
}

static void on_publish(struct mosquitto *m, void *ud, int mid, int reason, const mosquitto_property *props) {
    (void)m; (void)ud; (void)mid; (void)props;
    /* MQTT 5: a reason code >= 0x80 is a refusal, not a delivery. */
    if (reason >= 0x80) failed++;
    acked++;
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *topic = "pantau/bench/ceiling/devices/d0/telemetry", *file = NULL;
    int port = 1883, window = 64, v5 = 1, opt;
    long count = 1000;
    while ((opt = getopt(argc, argv, "h:p:n:f:t:w:3")) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'n': count = atol(optarg); break;
        case 'f': file = optarg; break;
        case 't': topic = optarg; break;
        case 'w': window = atoi(optarg); break;
        case '3': v5 = 0; break;
        default:
            fprintf(stderr, "usage: %s -p PORT -n COUNT -f PAYLOAD_FILE [-h HOST] [-t TOPIC] [-w WINDOW] [-3]\n",
                    argv[0]);
            return 2;
        }
    }
    char payload[65536];
    size_t len = 0;
    if (file) {
        FILE *f = fopen(file, "rb");
        if (!f) { perror(file); return 2; }
        len = fread(payload, 1, sizeof payload, f);
        fclose(f);
    } else {
        len = 200;
        memset(payload, 'x', len);
    }
    if (window < 1) window = 1;

    mosquitto_lib_init();
    struct mosquitto *m = mosquitto_new("bench-mosq-pub", true, NULL);
    if (!m) { perror("mosquitto_new"); return 1; }
    if (v5) mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    /* The window is kept here; the library must not hold messages back on its own (default 20). */
    mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, window);
    mosquitto_connect_v5_callback_set(m, on_connect);
    mosquitto_publish_v5_callback_set(m, on_publish);
    int rc = mosquitto_connect(m, host, port, 30);
    if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "connect: %s\n", mosquitto_strerror(rc)); return 1; }
    double deadline = now_s() + 600;
    while (!connected && connect_rc <= 0 && now_s() < deadline) {
        if (mosquitto_loop(m, 100, 1) != MOSQ_ERR_SUCCESS) break;
        if (connect_rc > 0) break;
    }
    if (!connected) { fprintf(stderr, "not connected (rc %d)\n", connect_rc); return 1; }

    long sent = 0;
    double t0 = now_s();
    while (acked < count && now_s() < deadline) {
        while (sent < count && sent - acked < window) {
            rc = mosquitto_publish_v5(m, NULL, topic, (int)len, payload, 1, false, NULL);
            if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "publish: %s\n", mosquitto_strerror(rc)); return 1; }
            sent++;
        }
        rc = mosquitto_loop(m, 100, 1);
        if (rc != MOSQ_ERR_SUCCESS) { fprintf(stderr, "loop: %s\n", mosquitto_strerror(rc)); return 1; }
    }
    double dt = now_s() - t0;
    printf("{\"messages\": %ld, \"acked\": %ld, \"refused\": %ld, \"payload_bytes\": %zu, \"window\": %d, "
           "\"seconds\": %.6f, \"messages_per_s\": %.1f}\n",
           count, acked, failed, len, window, dt, dt > 0 ? acked / dt : 0.0);
    mosquitto_disconnect(m);
    mosquitto_loop(m, 100, 1);
    mosquitto_destroy(m);
    mosquitto_lib_cleanup();
    return acked == count && failed == 0 ? 0 : 1;
}
