DROP TABLE orders;
DROP FUNCTION touch_updated_at();
