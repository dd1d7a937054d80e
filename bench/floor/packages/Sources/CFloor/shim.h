// The C libraries pantau links, for the runtime-floor program (bench/floor/build.sh).
#include <modbus/modbus.h>
#include <mosquitto.h>
#include <sqlite3.h>
#include <yaml.h>
