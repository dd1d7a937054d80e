#include <sqlite3.h>

/// sqlite3_config is variadic, which Swift cannot call. Before the library initializes (the first open), this
/// turns off the page cache's up-front block (SQLITE_DEFAULT_PCACHE_INITSZ pages, about 85 kB per connection,
/// every page of it written at the first transaction): pages are then allocated as a connection needs them.
/// SQLITE_MISUSE once the library is initialized; harmless.
static inline int pantau_sqlite3_no_page_cache_block(void) {
    return sqlite3_config(SQLITE_CONFIG_PAGECACHE, (void *)0, 0, 0);
}
