"""The names of Celery's settings: every one Celery 5.7 knows, the older names from
before Celery 4, and names projects write believing Celery has them.

A Django project spells them upper-cased with a ``CELERY_`` prefix
(``CELERY_TASK_ALWAYS_EAGER``); :func:`celery_name` turns such a Django setting back into
Celery's own lower-case name.
"""

from __future__ import annotations

# Every setting Celery 5.7 knows, by its lower-case name (for rules and suggestions).
_KNOWN_WORDS = """
accept_content arangodb_backend_settings azureblockblob_base_path
azureblockblob_connection_timeout azureblockblob_container_name azureblockblob_read_timeout
azureblockblob_retry_increment_base azureblockblob_retry_initial_backoff_sec
azureblockblob_retry_max_attempts beat_cron_starting_deadline beat_enable_remote_control
beat_max_loop_interval beat_remote_control_max_tick_age beat_schedule beat_schedule_filename
beat_scheduler beat_sync_every broker_channel_error_retry broker_connection_max_retries
broker_connection_retry broker_connection_retry_on_startup broker_connection_timeout
broker_failover_strategy broker_heartbeat broker_heartbeat_checkrate broker_host
broker_login_method broker_native_delayed_delivery_queue_type broker_password
broker_pool_acquire_timeout broker_pool_limit broker_port broker_read_url broker_transport
broker_transport_options broker_url broker_use_ssl broker_user broker_vhost broker_write_url
cache_backend cache_backend_options cassandra_auth_kwargs cassandra_auth_provider
cassandra_bundle_path cassandra_entry_ttl cassandra_keyspace cassandra_options cassandra_port
cassandra_read_consistency cassandra_servers cassandra_table cassandra_write_consistency
control_exchange control_queue_durable control_queue_exclusive control_queue_expires
control_queue_ttl cosmosdbsql_collection_name cosmosdbsql_consistency_level
cosmosdbsql_database_name cosmosdbsql_max_retry_attempts cosmosdbsql_max_retry_wait_time
couchbase_backend_settings database_create_tables_at_setup database_engine_callback
database_engine_options database_short_lived_sessions database_table_names
database_table_schemas database_url elasticsearch_max_retries elasticsearch_retry_on_timeout
elasticsearch_save_meta_as_text elasticsearch_timeout enable_utc event_exchange
event_queue_durable event_queue_exclusive event_queue_expires event_queue_prefix
event_queue_ttl event_serializer gcs_base_path gcs_bucket gcs_project gcs_ttl imports include
mongodb_backend_settings redis_backend_use_ssl redis_db redis_host redis_max_connections
redis_password redis_port redis_retry_on_timeout redis_socket_connect_timeout
redis_socket_keepalive redis_socket_timeout redis_username result_accept_content result_backend
result_backend_always_retry result_backend_base_sleep_between_retries_ms
result_backend_max_retries result_backend_max_sleep_between_retries_ms
result_backend_transport_options result_cache_max result_chord_expires
result_chord_join_timeout result_chord_retry_interval result_compression result_exchange
result_exchange_type result_expires result_extended result_failure_expires result_persistent
result_serializer s3_access_key_id s3_base_path s3_bucket s3_endpoint_url s3_region
s3_secret_access_key security_cert_store security_certificate security_digest security_key
security_key_password task_acks_late task_acks_on_failure task_acks_on_failure_or_timeout
task_acks_on_timeout task_allow_error_cb_on_chord_header task_always_eager task_annotations
task_compression task_create_missing_queue_exchange_type task_create_missing_queue_type
task_create_missing_queues task_default_delivery_mode task_default_exchange
task_default_exchange_type task_default_priority task_default_queue task_default_queue_type
task_default_rate_limit task_default_routing_key task_eager_propagates task_ignore_result
task_inherit_parent_priority task_protocol task_publish_retry task_publish_retry_policy
task_queue_max_priority task_queues task_reject_on_worker_lost task_remote_tracebacks
task_repr_maxlevels task_retry_on_worker_lost task_routes task_send_sent_event task_serializer
task_soft_time_limit task_store_eager_result task_store_errors_even_if_ignored task_time_limit
task_track_started timezone worker_agent worker_autoscaler
worker_cancel_long_running_tasks_on_connection_loss worker_concurrency worker_consumer
worker_deduplicate_successful_tasks worker_detect_quorum_queues worker_direct
worker_disable_prefetch worker_disable_rate_limits worker_enable_prefetch_count_reduction
worker_enable_remote_control worker_enable_soft_shutdown_on_idle worker_eta_task_limit
worker_hijack_root_logger worker_log_color worker_log_datefmt worker_log_format
worker_lost_wait worker_max_memory_per_child worker_max_tasks_per_child worker_pool
worker_pool_putlocks worker_pool_restarts worker_pool_start_method worker_prefetch_multiplier
worker_proc_alive_timeout worker_redirect_stdouts worker_redirect_stdouts_level
worker_send_task_events worker_soft_shutdown_timeout worker_state_db worker_task_log_datefmt
worker_task_log_format worker_timer worker_timer_precision
"""
KNOWN = frozenset(_KNOWN_WORDS.split())

# Names from before Celery 4 that differ from CELERY_ + the new name in capitals.
OLD_NAMES: dict[str, str] = {
    "CELERY_ALWAYS_EAGER": "task_always_eager",
    "CELERY_EAGER_PROPAGATES_EXCEPTIONS": "task_eager_propagates",
    "CELERY_ACKS_LATE": "task_acks_late",
    "CELERY_ACKS_ON_FAILURE_OR_TIMEOUT": "task_acks_on_failure_or_timeout",
    "CELERY_ANNOTATIONS": "task_annotations",
    "CELERY_ROUTES": "task_routes",
    "CELERY_QUEUES": "task_queues",
    "CELERY_DEFAULT_QUEUE": "task_default_queue",
    "CELERY_DEFAULT_EXCHANGE": "task_default_exchange",
    "CELERY_DEFAULT_EXCHANGE_TYPE": "task_default_exchange_type",
    "CELERY_DEFAULT_ROUTING_KEY": "task_default_routing_key",
    "CELERY_DEFAULT_DELIVERY_MODE": "task_default_delivery_mode",
    "CELERY_DEFAULT_RATE_LIMIT": "task_default_rate_limit",
    "CELERY_DEFAULT_PRIORITY": "task_default_priority",
    "CELERY_CREATE_MISSING_QUEUES": "task_create_missing_queues",
    "CELERY_IGNORE_RESULT": "task_ignore_result",
    "CELERY_TRACK_STARTED": "task_track_started",
    "CELERY_STORE_ERRORS_EVEN_IF_IGNORED": "task_store_errors_even_if_ignored",
    "CELERY_MESSAGE_COMPRESSION": "task_compression",
    "CELERY_SEND_TASK_SENT_EVENT": "task_send_sent_event",
    "CELERY_SEND_EVENTS": "worker_send_task_events",
    "CELERY_DISABLE_RATE_LIMITS": "worker_disable_rate_limits",
    "CELERY_ENABLE_REMOTE_CONTROL": "worker_enable_remote_control",
    "CELERY_REDIRECT_STDOUTS": "worker_redirect_stdouts",
    "CELERY_REDIRECT_STDOUTS_LEVEL": "worker_redirect_stdouts_level",
    "CELERY_REJECT_ON_WORKER_LOST": "task_reject_on_worker_lost",
    "CELERY_TASK_RESULT_EXPIRES": "result_expires",
    "CELERY_MAX_CACHED_RESULTS": "result_cache_max",
    "CELERY_RESULT_DBURI": "database_url",
    "CELERYBEAT_SCHEDULE": "beat_schedule",
    "CELERYBEAT_SCHEDULER": "beat_scheduler",
    "CELERYBEAT_SCHEDULE_FILENAME": "beat_schedule_filename",
    "CELERYBEAT_MAX_LOOP_INTERVAL": "beat_max_loop_interval",
    "CELERYBEAT_SYNC_EVERY": "beat_sync_every",
    "CELERYD_CONCURRENCY": "worker_concurrency",
    "CELERYD_PREFETCH_MULTIPLIER": "worker_prefetch_multiplier",
    "CELERYD_MAX_TASKS_PER_CHILD": "worker_max_tasks_per_child",
    "CELERYD_MAX_MEMORY_PER_CHILD": "worker_max_memory_per_child",
    "CELERYD_TASK_TIME_LIMIT": "task_time_limit",
    "CELERYD_TASK_SOFT_TIME_LIMIT": "task_soft_time_limit",
    "CELERYD_POOL": "worker_pool",
    "CELERYD_AUTOSCALER": "worker_autoscaler",
    "CELERYD_HIJACK_ROOT_LOGGER": "worker_hijack_root_logger",
    "CELERYD_LOG_FORMAT": "worker_log_format",
    "CELERYD_TASK_LOG_FORMAT": "worker_task_log_format",
    "CELERYD_STATE_DB": "worker_state_db",
}

# Names Celery does not have, which projects write believing it does.
NOT_CELERY: dict[str, str] = {
    "CELERY_TASK_DEFAULT_RETRY_DELAY": (
        "Celery has no such setting. Set default_retry_delay= on the tasks, or for all of "
        "them with CELERY_TASK_ANNOTATIONS = {'*': {'default_retry_delay': 60}}."
    ),
    "CELERY_TASK_MAX_RETRIES": (
        "Celery has no such setting. Set max_retries= on the tasks, or for all of them "
        "with CELERY_TASK_ANNOTATIONS = {'*': {'max_retries': 5}}."
    ),
}


def celery_name(setting: str) -> str | None:
    """The Celery name behind the Django setting ``setting``, or None if not one."""
    if setting in OLD_NAMES:
        return OLD_NAMES[setting]
    if setting.startswith("CELERY_"):
        name = setting[len("CELERY_") :].lower()
        if name in KNOWN:
            return name
    return None
