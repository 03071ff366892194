# Databricks notebook source
# MAGIC %md
# MAGIC # Seed 000 on Databricks: click streams into Delta on ADLS, queried while they flow
# MAGIC
# MAGIC kafkalake produces click streams to Kafka (or Event Hubs) and ingests them into a
# MAGIC Delta table on ADLS Gen2, both in the background, while this notebook queries the
# MAGIC table with Spark SQL. No streaming cluster configuration, no Spark Kafka connector:
# MAGIC the wheel is the only library.
# MAGIC
# MAGIC Before running: upload the wheel built by `scripts/build-wheels.sh` to a Volume (or
# MAGIC workspace files) and put the credentials in a secret scope:
# MAGIC `storage-account-key` (the storage account's key) and, with Event Hubs,
# MAGIC `eventhubs-connection-string`.

# COMMAND ----------

# MAGIC %pip install /Volumes/main/default/wheels/kafkalake-0.1.0-cp311-abi3-manylinux_2_28_x86_64.whl

# COMMAND ----------

dbutils.widgets.text("storage_account", "mydatalake", "Storage account")
dbutils.widgets.text("container", "lake", "Container")
dbutils.widgets.text("folder", "kafkalake/clickstream", "Folder in the container")
dbutils.widgets.text("bootstrap_servers", "", "Kafka brokers (empty: Event Hubs from the secret scope)")
dbutils.widgets.text("topic", "clicks", "Topic (event hub)")
dbutils.widgets.text("secret_scope", "kafkalake", "Secret scope")
dbutils.widgets.text("schema", "main.kafkalake", "Catalog and schema to register the tables in")

# COMMAND ----------

import kafkalake

scope = dbutils.widgets.get("secret_scope")
account = dbutils.widgets.get("storage_account")
lake = (
    f"abfss://{dbutils.widgets.get('container')}@{account}.dfs.core.windows.net/"
    f"{dbutils.widgets.get('folder').strip('/')}"
)
bronze = f"{lake}/bronze/clicks"
gold = f"{lake}/gold/clicks_per_category"
storage = {
    "azure_storage_account_name": account,
    "azure_storage_account_key": dbutils.secrets.get(scope, "storage-account-key"),
}
topic = dbutils.widgets.get("topic")
if dbutils.widgets.get("bootstrap_servers"):
    kafka = {"bootstrap_servers": dbutils.widgets.get("bootstrap_servers")}
    create_topic = True
else:
    eh = kafkalake.EventHubs.from_connection_string(
        dbutils.secrets.get(scope, "eventhubs-connection-string"), eventhub=topic
    )
    kafka = eh.kafka_args()
    create_topic = False  # event hubs are created ahead, with their partitions
print(kafka["bootstrap_servers"], bronze)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Produce and ingest, both in the background
# MAGIC
# MAGIC 40,000 product events at 4,000 per second (views, add-to-carts, purchases). The
# MAGIC ingest runs until stopped and commits at least every second, exactly once.

# COMMAND ----------

producer = kafkalake.start_produce(
    "clickstream", topic, count=40_000, rate=4_000, create_topic=create_topic, **kafka
)
ingest = kafkalake.start_ingest(
    topic,
    bronze,
    until="forever",
    max_latency=1,
    storage_options=storage,
    table_properties={"quality": "bronze"},
    **kafka,
)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Register the table and query it while both run
# MAGIC
# MAGIC The table stays where kafkalake writes it (an external location): Unity Catalog
# MAGIC managed tables are read-only to writers outside Databricks.

# COMMAND ----------

schema = dbutils.widgets.get("schema")
ingest.wait_for(commits=1, timeout=300)  # the first commit creates the table
spark.sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")
spark.sql(f"CREATE TABLE IF NOT EXISTS {schema}.clicks_bronze USING DELTA LOCATION '{bronze}'")
funnel = f"""
    SELECT category, count(*) AS events,
           count_if(action = 'view') AS views,
           count_if(action = 'add_to_cart') AS carts,
           count_if(action = 'purchase') AS purchases
    FROM {schema}.clicks_bronze GROUP BY category ORDER BY category
"""
display(spark.sql(funnel))

# COMMAND ----------

kafkalake.monitor(producer, ingest, every=1.0, duration=10)

# COMMAND ----------

print(producer.wait())
ingest.wait_for(rows=40_000, timeout=300)  # raises if the ingest failed in the background
print(ingest.stop())

# COMMAND ----------

# MAGIC %md
# MAGIC ## Gold: views, carts, purchases and revenue per category and minute

# COMMAND ----------

report = kafkalake.pipeline.run(
    {
        "storage_options": storage,
        "bronze": {"clicks": {"topics": [topic], "table": bronze, **kafka}},
        "gold": {
            "per_category": {
                "from": "bronze.clicks",
                "table": gold,
                "window": {"time": "timestamp", "size": "1m", "watermark": "5m"},
                "group_by": ["category"],
                "aggregates": {
                    "views": "sum(CASE WHEN action = 'view' THEN 1 ELSE 0 END)",
                    "purchases": "sum(CASE WHEN action = 'purchase' THEN 1 ELSE 0 END)",
                    "revenue": "sum(CASE WHEN action = 'purchase' THEN price ELSE 0 END)",
                },
                "table_properties": {"quality": "gold"},
            }
        },
    },
    stage="gold.per_category",
)
print(report)
spark.sql(f"CREATE TABLE IF NOT EXISTS {schema}.clicks_per_category USING DELTA LOCATION '{gold}'")
display(spark.sql(f"SELECT * FROM {schema}.clicks_per_category ORDER BY window_start, category"))
