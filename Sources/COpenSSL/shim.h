// Only what PantauMQTT needs to name a TLS failure: the verification result of libmosquitto's SSL object.
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/err.h>
